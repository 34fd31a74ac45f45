"""The sandbox's JSON text: ``dumps_with`` and ``Encoded`` give ``json.dumps``'s text, byte for byte."""

from __future__ import annotations

import copy
import json
import pickle
import random

import pytest

from psp_sandbox import encoding, events, object_text, objects


def _value(rng: random.Random, depth: int = 0) -> object:
    kinds = ["s", "i", "n", "b", "f"] + (["d", "l"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "s":
        return "".join(rng.choice('ab"\\\0é\u2028\n x') for _ in range(rng.randrange(6)))
    if kind == "i":
        return rng.randrange(-10**12, 10**12)
    if kind == "f":
        return rng.random() * 1e6
    if kind == "d":
        return {f"k{rng.randrange(9)}{c}": _value(rng, depth + 1) for c in "abc"[: rng.randrange(4)]}
    if kind == "l":
        return [_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {"n": None, "b": rng.random() < 0.5}[kind]


def test_a_part_spliced_in_gives_the_text_json_dumps_gives():
    rng = random.Random(8)
    for _ in range(3000):
        obj = {f"k{i}": _value(rng) for i in range(rng.randrange(1, 6))}
        key = rng.choice(list(obj))
        assert encoding.dumps_with(obj, key, encoding.dumps(obj[key])) == json.dumps(obj)


def test_a_client_string_holding_the_slots_text_is_still_encoded_as_it_is():
    obj = {"a": 1, "b": encoding._SLOT, "c": {"x": [encoding._SLOT]}}
    assert encoding.dumps_with(obj, "a", "1") == json.dumps(obj)


def test_an_encoded_object_keeps_its_text_and_cannot_change():
    part = encoding.Encoded({"card": {"request_three_d_secure": "automatic", "x": None}, "y": 1})
    assert part.text == json.dumps(part) == json.dumps({"card": {"request_three_d_secure": "automatic", "x": None},
                                                        "y": 1})
    for change in (lambda: part.__setitem__("y", 2), lambda: part["card"].update(x=1), lambda: part.pop("y"),
                   lambda: part.setdefault("z", 1), part.clear, part.popitem, lambda: part.__delitem__("y")):
        with pytest.raises(TypeError):
            change()
    assert copy.deepcopy(part) == pickle.loads(pickle.dumps(part)) == part
    with pytest.raises(TypeError):
        encoding.Encoded({"a": [1]})


def test_a_complete_payment_intent_shares_the_default_options_and_is_encoded_as_json_dumps_encodes_it():
    first = objects.complete({"object": "payment_intent", "id": "pi_1", "metadata": {}})
    again = objects.complete(json.loads(json.dumps(first)))  # decoded: plain dicts, completed again
    assert first["payment_method_options"] is objects._DEFAULT_PMO
    assert type(again["payment_method_options"]) is dict and again == first
    assert object_text.dumps_complete(first) == json.dumps(first)
    assert object_text.dumps_complete(again) == json.dumps(again)
    assert objects.complete(first) == first


def test_remembered_strings_and_any_other_are_escaped_as_json_escapes_them():
    rng = random.Random(9)
    for _ in range(3000):
        obj = {k: _value(rng) for k in rng.sample(sorted(encoding._ESCAPES), 5) + ["é\u2028x", "\0"]}
        obj[rng.choice(list(encoding._ESCAPES))] = rng.choice(list(encoding._ESCAPES))
        assert encoding.dumps(obj) == json.dumps(obj)
    assert encoding.dumps("x\u2028") == json.dumps("x\u2028") and encoding.dumps(1.5e300) == json.dumps(1.5e300)
    assert 200 < len(encoding._ESCAPES) < 1000 and events._SAMPLES  # names and constants only: nothing else is kept
    with pytest.raises(TypeError, match="not JSON serializable"):
        encoding.dumps({"a": object()})
    assert [encoding.dumps(x) for x in (float("nan"), float("-inf"), -0.0)] == ["NaN", "-Infinity", "-0.0"]


def test_a_charges_null_payment_method_types_are_spliced_in_as_json_dumps_writes_them():
    charge = objects.complete({"object": "charge", "id": "ch_1", "status": "succeeded", "amount": 5,  # as stored
                               "payment_method_details": {"type": "card", "card": {"brand": "amex", "x": None}}})
    details = charge["payment_method_details"]
    assert list(details)[:2] == ["type", "card"] and object_text._PMD_TAIL in object_text.dumps_complete(charge)
    assert object_text.dumps_complete(charge) == json.dumps(charge)
    for changed in ({**details, "ach_debit": {"x": 1}}, {"card": details["card"], **details}, {**details, "zip": 0},
                    {k: v for k, v in details.items() if k != "zip"}, {**details, "extra": None}):
        other = {**charge, "payment_method_details": changed}
        assert object_text.dumps_complete(other) == json.dumps(other)
