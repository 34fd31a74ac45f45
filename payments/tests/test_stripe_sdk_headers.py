"""The SDK's request headers made once per kind (``payments.psp.stripe_sdk_headers``): the SDK's own headers,
the idempotency key given, or one of the SDK's own making per POST."""
from __future__ import annotations

import re

import pytest

from payments.psp.stripe_adapter import StripeAdapter

_SDK_KEY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.mark.parametrize(("method", "api_mode", "options"), [
    ("post", "V1", {"idempotency_key": "order:ord_1:1"}),
    ("post", "V1", {}),
    ("get", "V1", {}),
    ("post", "V1", {"stripe_account": "acct_1", "idempotency_key": "payout:1"}),
    ("delete", "V2", {}),
    ("post", "V2", {"idempotency_key": "k"}),
])
def test_headers_are_the_sdks_own(method, api_mode, options):
    requestor = StripeAdapter(api_key="sk_test_headers", api_base="http://127.0.0.1:9").client._requestor
    made = requestor.request_headers.made
    options = {"api_key": "sk_test_headers", "stripe_version": "2024-06-20", **options}
    for _ in range(3):  # the first call makes the kind, the next ones copy it
        ours, sdks = requestor.request_headers(method, api_mode, options), made(method, api_mode, options)
        if options.get("idempotency_key") or "Idempotency-Key" not in sdks:
            assert ours == sdks
        else:  # a key of the SDK's own making, new for each request
            assert _SDK_KEY.fullmatch(ours.pop("Idempotency-Key"))
            assert ours != requestor.request_headers(method, api_mode, options)
            assert ours == {k: v for k, v in sdks.items() if k != "Idempotency-Key"}


def test_a_kind_is_its_key_account_and_version():
    requestor = StripeAdapter(api_key="sk_test_a", api_base="http://127.0.0.1:9").client._requestor
    a = requestor.request_headers("post", "V1", {"api_key": "sk_test_a", "stripe_version": "v1"})
    b = requestor.request_headers("post", "V1", {"api_key": "sk_test_b", "stripe_version": "v1"})
    c = requestor.request_headers("post", "V1", {"api_key": "sk_test_a", "stripe_version": "v2",
                                                 "stripe_account": "acct_9"})
    assert (a["Authorization"], b["Authorization"]) == ("Bearer sk_test_a", "Bearer sk_test_b")
    assert (c["Stripe-Version"], c["Stripe-Account"]) == ("v2", "acct_9")
    assert "Stripe-Account" not in a


def test_the_sdks_form_encoding_is_urlencodes_own():
    """``stripe_sdk_encoding``: the SDK's ``urlencode`` quotes through a cache and writes the same body."""
    from urllib.parse import urlencode

    from stripe import _api_requestor
    from stripe._encode import _api_encode

    params = {"amount": 1250, "currency": "usd", "confirm": True, "off_session": True,
              "allowed_payment_method_types": ["card"], "customer": "cus_é&=+ /x",
              "metadata": {"payment_order_id": "ord_1", "seller_id": "sel_ü", "note": "a b&c=d"}}
    for _ in range(2):  # missed, then hit
        pairs = list(_api_encode(params))
        assert _api_requestor.urlencode(pairs) == urlencode(pairs)
    assert _api_requestor.urlencode is not urlencode
