"""Input serializers share their bound fields between instances (``core.serializers.FieldsBoundOnce``):
they must accept, refuse and clean exactly what DRF's own per-instance fields do, from any thread."""
import copy
import json
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from rest_framework import serializers

import core.serializers
from core.serializers import FieldsBoundOnce, StrictSerializer
from payments.serializers import CheckoutInput, CheckoutSessionInput, RefundInput, SellerInput

VALID = {
    CheckoutInput: {"buyer": {"reference": " b1 ", "email": "b@example.com"}, "payment_method": "pm_card_visa",
                    "orders": [{"seller": "sel_1", "amount": 1000, "currency": "USD"},
                               {"seller": "sel_2", "amount": 50, "currency": "eur"}],
                    "return_url": "https://shop.example/back"},
    CheckoutSessionInput: {"buyer": {"reference": "b"}, "success_url": "https://s.example/ok",
                           "cancel_url": "http://s.example/no",
                           "orders": [{"seller": "sel_1", "amount": 300, "currency": "usd",
                                       "items": [{"name": "tea", "quantity": 3, "amount": 100}]}]},
    RefundInput: {"amount": 10, "reason": "asked"},
    SellerInput: {"name": "Shop", "external_reference": "x-1"},
}
ODD_VALUES = [None, "", " ", "\t", 0, -1, 1.5, True, "0", "x" * 300, [], {}, [1], {"a": 1}, "4242424242424242",
              "pm_4242 4242 4242 4242", "sel_1", "usd", "zzz", "ftp://a.example", "https://a.example/" + "p" * 2100,
              "a\x00b", "é", "\ud800", "a\udfffb", "ab", 10**15, "b@example.com", "not an email"]


def _mutations(body: dict, rng: random.Random, n: int):
    """``body`` with one to three leaves replaced, dropped or added, ``n`` times: valid and invalid bodies."""
    for _ in range(n):
        mutated = copy.deepcopy(body)
        for _ in range(rng.randint(1, 3)):
            node = mutated
            while True:
                keys = list(node) if isinstance(node, dict) else list(range(len(node)))
                if not keys:
                    break
                key = rng.choice(keys)
                if isinstance(node[key], (dict, list)) and rng.random() < 0.6:
                    node = node[key]
                    continue
                action = rng.random()
                if action < 0.7:
                    node[key] = rng.choice(ODD_VALUES)
                elif action < 0.85 and isinstance(node, dict):
                    del node[key]
                elif isinstance(node, dict):
                    node[rng.choice(["extra", "amount", "seller", "email", "4242424242424242"])] = rng.choice(
                        ODD_VALUES)
                break
        yield mutated


def _outcome(serializer_class, body):
    serializer = serializer_class(data=body)
    valid = serializer.is_valid()
    return valid, json.loads(json.dumps(serializer.errors)), (serializer.validated_data if valid else None)


def _drf_outcomes(serializer_class, bodies, monkeypatch):
    """What DRF's own serializers decide: every field, nested ones included, deep-copied per instance, and
    DRF's own validation path (no quick acceptance)."""
    with monkeypatch.context() as patch:
        patch.setattr(FieldsBoundOnce, "fields", serializers.Serializer.fields)
        patch.setattr(core.serializers, "_accepted", lambda serializer, data: None)
        assert serializer_class(data={}).fields is not serializer_class(data={}).fields
        return [_outcome(serializer_class, body) for body in bodies]


@pytest.mark.parametrize("serializer_class", list(VALID))
def test_accepts_refuses_and_cleans_what_drf_does(serializer_class, monkeypatch):
    bodies = [VALID[serializer_class], *_mutations(VALID[serializer_class], random.Random(8), 400)]
    shared = [_outcome(serializer_class, body) for body in bodies]
    assert shared == _drf_outcomes(serializer_class, bodies, monkeypatch)
    assert shared[0][0] is True
    assert 20 < sum(not valid for valid, _, _ in shared) < len(bodies)  # both kinds were tried
    assert serializer_class(data={}).fields is serializer_class(data={}).fields  # built once per class


def test_errors_name_the_offending_order_and_field(monkeypatch):
    body = copy.deepcopy(VALID[CheckoutInput])
    body["orders"][1]["currency"] = "zzz"
    body["buyer"]["reference"] = "4242 4242 4242 4242"
    valid, errors, _ = _outcome(CheckoutInput, body)
    assert not valid
    assert errors == {"buyer": {"reference": [CheckoutInput().fields["buyer"].fields["reference"]
                                              .error_messages["card_number_refused"]]},
                      "orders": {"1": {"currency": ["Not an ISO 4217 currency code."]}}}


def test_instances_in_many_threads_validate_their_own_body(monkeypatch):
    bodies = [VALID[CheckoutInput], *_mutations(VALID[CheckoutInput], random.Random(3), 50)] * 8
    expected = _drf_outcomes(CheckoutInput, bodies, monkeypatch)
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(lambda body: _outcome(CheckoutInput, body), bodies)) == expected


def _checkout_bodies(rng: random.Random, n: int):
    """Checkout bodies that vary what a valid one may: 1-5 orders, optional members present or not, spaces
    around free text, currencies in either case, amounts at their limits."""
    for _ in range(n):
        buyer = {"reference": rng.choice(["b", " b1 ", "buyer-42", "é" * 100, "x\ty"])}
        if rng.random() < 0.5:
            buyer["email"] = rng.choice(["", "b@example.com", "B.C+d@example.co.uk"])
        orders = [{"seller": f"sel_{k}", "amount": rng.choice([1, 50, 99999999]),
                   "currency": rng.choice(["usd", "EUR", "jpy", "Kwd"])} for k in range(rng.randint(1, 5))]
        body = {"buyer": buyer, "payment_method": rng.choice(["pm_card_visa", "pm_" + "a" * 96]), "orders": orders}
        if rng.random() < 0.5:
            body["return_url"] = rng.choice(["", "https://shop.example/back", "http://a.example"])
        yield body


@pytest.mark.parametrize("serializer_class", [*VALID, *StrictSerializer.__subclasses__()])
def test_the_quick_acceptance_gives_what_drfs_path_gives(serializer_class, monkeypatch):
    """``core.serializers._accepted`` (a body DRF accepts, validated without DRF's machinery) against DRF's own
    path: the same acceptance, errors and cleaned data, over valid bodies and mutated ones; and it is taken."""
    rng = random.Random(11)
    valid = VALID.get(serializer_class)
    bodies = [*_checkout_bodies(rng, 300)] if serializer_class is CheckoutInput else []
    for body in [valid, *bodies] if valid else []:
        bodies += [body, *_mutations(body, rng, 3)]
    bodies += [{}, {"x": 1}, None, [], "x"]
    taken = []
    quick = core.serializers._accepted
    monkeypatch.setattr(core.serializers, "_accepted", lambda s, data: taken.append(quick(s, data)) or taken[-1])
    ours = [_outcome(serializer_class, body) for body in bodies]
    monkeypatch.setattr(core.serializers, "_accepted", lambda serializer, data: None)
    assert ours == [_outcome(serializer_class, body) for body in bodies]
    if serializer_class is CheckoutInput:
        assert sum(valid for valid, _, _ in ours) > 300 and any(value is not None for value in taken)
