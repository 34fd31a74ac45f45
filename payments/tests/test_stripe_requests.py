"""Every request the adapter sends is one Stripe documents for the pinned API version.

The adapter drives the sandbox through a recording HTTP client; each request's form body and
query are then held against the official SDK's own parameter declarations for that endpoint
(``stripe.params``, generated from Stripe's OpenAPI specification for ``stripe.api_version``):
no parameter it doesn't declare, no required one missing, no pair Stripe documents as exclusive.
"""
from __future__ import annotations

import re
import sys
import typing
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe
import typing_extensions
from stripe import params as stripe_params

from payments.psp.base import CustomerRequest, PaymentRequest, PaymentStatus, PSPPaymentMethodRefused, RefundRequest
from payments.psp.http_client import PSPHttpClient
from payments.psp.stripe_adapter import StripeAdapter

ENDPOINTS = [
    ("POST", r"/v1/customers", stripe_params.CustomerCreateParams),
    ("POST", r"/v1/payment_methods/[^/]+/attach", stripe_params.PaymentMethodAttachParams),
    ("POST", r"/v1/payment_intents", stripe_params.PaymentIntentCreateParams),
    ("POST", r"/v1/payment_intents/[^/]+/cancel", stripe_params.PaymentIntentCancelParams),
    ("GET", r"/v1/payment_intents/search", stripe_params.PaymentIntentSearchParams),
    ("GET", r"/v1/payment_intents/[^/]+", stripe_params.PaymentIntentRetrieveParams),
    ("POST", r"/v1/refunds", stripe_params.RefundCreateParams),
]
# Keys of the SDK's request options that its param TypedDicts also carry; they are never parameters.
REQUEST_OPTIONS = set(stripe.RequestOptions.__annotations__)
# Documented as mutually exclusive with allowed_payment_method_types (changelog 2026-07-29.dahlia).
EXCLUSIVE_WITH_ALLOWED = {"payment_method_types", "excluded_payment_method_types", "automatic_payment_methods",
                          "payment_method_configuration"}


class RecordingClient(PSPHttpClient):
    """The adapter's own HTTP client, recording what the SDK hands it to send."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sent: list[tuple[str, str, dict, str]] = []

    def request(self, method, url, headers, post_data=None):
        self.sent.append((method.upper(), url, dict(headers or {}), post_data or ""))
        return super().request(method, url, headers, post_data)


def _resolve(annotation, module):
    """A declared type with NotRequired/forward references taken off."""
    if isinstance(annotation, str):
        annotation = typing.ForwardRef(annotation)
    if isinstance(annotation, typing.ForwardRef):
        try:
            annotation = eval(annotation.__forward_arg__, vars(module))  # noqa: S307 - the SDK's own source
        except Exception:  # noqa: BLE001 - an alias we can't evaluate: accept any value under it
            return typing.Any
    origin = typing.get_origin(annotation)
    if origin in (typing.NotRequired, typing.Required, typing_extensions.NotRequired, typing_extensions.Required):
        return _resolve(typing.get_args(annotation)[0], module)
    return annotation


def _problems(path: list[str], value: str, declared, module) -> list[str]:
    """Walk ``a[b][0]`` down the declared types; name what Stripe would refuse."""
    declared = _resolve(declared, module)
    if not path:
        return []
    head, rest = path[0], path[1:]
    if typing_extensions.is_typeddict(declared):  # the SDK's TypedDicts come from typing_extensions
        hints = declared.__annotations__
        if head not in hints or head in REQUEST_OPTIONS:
            return [f"unknown parameter {head!r} for {declared.__name__}"]
        return _problems(rest, value, hints[head], sys.modules[declared.__module__])
    origin = typing.get_origin(declared)
    if origin in (list, typing.List):  # noqa: UP006 - the SDK spells it so
        if not head.isdigit():
            return [f"{head!r} is not a list index"]
        return _problems(rest, value, typing.get_args(declared)[0], module)
    if origin in (dict, typing.Dict):  # noqa: UP006
        return _problems(rest, value, typing.get_args(declared)[1], module)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        options = [_problems(path, value, arg, module) for arg in typing.get_args(declared)]
        return [] if any(not found for found in options) else options[0]
    return []  # a leaf, or an alias we can't see through


def _check(method: str, url: str, headers: dict, body: str) -> list[str]:
    parts = urlsplit(url)
    fields = parse_qsl(body if method == "POST" else parts.query, keep_blank_values=True)
    declared = next((td for verb, pattern, td in ENDPOINTS if verb == method and re.fullmatch(pattern, parts.path)),
                    None)
    if declared is None:
        return [f"{method} {parts.path}: not an endpoint the adapter is meant to call"]
    module = sys.modules[declared.__module__]
    found = []
    names = set()
    for key, value in fields:
        path = [key.split("[", 1)[0], *re.findall(r"\[([^\]]*)\]", key)]
        names.add(path[0])
        found += _problems(path, value, declared, module)
    missing = set(declared.__required_keys__) - REQUEST_OPTIONS - names
    found += [f"required parameter {name!r} missing" for name in sorted(missing)]
    if "allowed_payment_method_types" in names and names & EXCLUSIVE_WITH_ALLOWED:
        found.append(f"allowed_payment_method_types sent with {sorted(names & EXCLUSIVE_WITH_ALLOWED)}")
    if ("off_session" in names or "return_url" in names) and dict(fields).get("confirm") != "true":
        found.append("off_session/return_url without confirm=true")
    lowered = {k.lower(): v for k, v in headers.items()}
    if lowered.get("stripe-version") != stripe.api_version:
        found.append(f"Stripe-Version {lowered.get('stripe-version')!r}, pinned {stripe.api_version!r}")
    if method == "POST" and not 0 < len(lowered.get("idempotency-key", "")) <= 255:
        found.append("POST without an idempotency key of 1-255 characters")
    return [f"{method} {parts.path}: {problem}" for problem in found]


def test_the_recording_client_is_the_adapters_own(psp_sandbox):
    """What is recorded here is what production sends: the adapter's default client is this class."""
    assert type(StripeAdapter(api_base=psp_sandbox).client._requestor._client) is PSPHttpClient


def test_the_adapters_requests_are_all_documented_for_the_pinned_version(psp_sandbox):
    recorder = RecordingClient(api_base=psp_sandbox, timeout=10)
    psp = StripeAdapter(api_base=psp_sandbox, http_client=recorder)
    customer = psp.create_customer(CustomerRequest(idempotency_key="customer:conformance", buyer_reference="buyer-9",
                                                   email="buyer@example.com"))
    card = psp.attach_payment_method(payment_method="pm_card_visa", customer=customer, idempotency_key="attach:c")
    paid = psp.create_payment(PaymentRequest(
        idempotency_key="ord_conformance", payment_order_id="ord_conformance", amount=2500, currency="eur",
        payment_method=card, customer=customer, metadata={"payment_event_id": "pe_x", "seller_id": "sel_x"}))
    assert paid.status is PaymentStatus.SUCCEEDED
    psp.retrieve_payment(paid.psp_reference)
    psp.find_payment("ord_conformance")
    refund = psp.create_refund(RefundRequest(idempotency_key="rf_conformance", refund_id="rf_conformance",
                                             psp_payment_reference=paid.psp_reference, amount=500, currency="eur",
                                             metadata={"payment_order_id": "ord_x"}))
    assert refund.status is PaymentStatus.SUCCEEDED

    assert len(recorder.sent) == 6
    problems = [problem for sent in recorder.sent for problem in _check(*sent)]
    assert problems == []


def test_a_new_buyers_customer_with_the_card_attached_is_one_documented_call(psp_sandbox):
    """``POST /v1/customers`` with ``payment_method``: the customer and the attachment in one call, then the
    token itself charged with that customer; a token the PSP won't attach is a refusal, with its code."""
    recorder = RecordingClient(api_base=psp_sandbox, timeout=10)
    psp = StripeAdapter(api_base=psp_sandbox, http_client=recorder)
    customer = psp.create_customer(CustomerRequest(idempotency_key="customer:pe_conformance", buyer_reference="b-10",
                                                   email="buyer@example.com", payment_method="pm_card_visa"))
    paid = psp.create_payment(PaymentRequest(
        idempotency_key="ord_conformance_new", payment_order_id="ord_conformance_new", amount=2500, currency="usd",
        payment_method="pm_card_visa", customer=customer, metadata={"payment_event_id": "pe_conformance"}))
    assert paid.status is PaymentStatus.SUCCEEDED
    assert len(recorder.sent) == 2
    assert ("payment_method", "pm_card_visa") in parse_qsl(recorder.sent[0][3])
    assert [problem for sent in recorder.sent for problem in _check(*sent)] == []
    with pytest.raises(PSPPaymentMethodRefused) as refused:
        psp.create_customer(CustomerRequest(idempotency_key="customer:pe_refused", buyer_reference="b-11",
                                            payment_method="pm_doesnotexist"))
    assert refused.value.code == "resource_missing"


def test_the_on_session_requests_of_3d_secure_are_documented_too(psp_sandbox):
    """The buyer present: confirmed with a return_url (no off_session), then cancelled when abandoned."""
    recorder = RecordingClient(api_base=psp_sandbox, timeout=10)
    psp = StripeAdapter(api_base=psp_sandbox, http_client=recorder)
    asked = psp.create_payment(PaymentRequest(
        idempotency_key="ord_3ds_conformance", payment_order_id="ord_3ds_conformance", amount=2500, currency="eur",
        payment_method="pm_card_authenticationRequired", return_url="https://shop.example/pay/return/pe_x"))
    assert asked.status is PaymentStatus.REQUIRES_ACTION and asked.action_url.startswith(psp_sandbox)
    cancelled = psp.cancel_payment(asked.psp_reference, idempotency_key="cancel:ord_3ds_conformance")
    assert cancelled.status is PaymentStatus.FAILED
    assert len(recorder.sent) == 2
    assert [problem for sent in recorder.sent for problem in _check(*sent)] == []


@pytest.mark.parametrize("form", [
    "amount=100&currency=usd&payment_method_types[0]=card",  # gone from this API version
    "amount=100&currency=usd&allowed_payment_method_types[0]=card&automatic_payment_methods[enabled]=true",
    "amount=100&currency=usd&off_session=true",
    "currency=usd",
    "amount=100&currency=usd&metadata[k]=v&shoe_size=42",
])
def test_the_check_itself_catches_what_stripe_refuses(form):
    headers = {"Stripe-Version": stripe.api_version, "Idempotency-Key": "k"}
    assert _check("POST", "http://psp/v1/payment_intents", headers, form)
