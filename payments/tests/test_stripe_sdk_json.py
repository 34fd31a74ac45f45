"""The SDK's responses read into plain dicts (``payments.psp.stripe_sdk_json``): the same data, in the same order."""
import inspect
import json
from collections import OrderedDict

import pytest
from stripe import _stripe_response

from payments.psp import stripe_adapter  # noqa: F401  (installs it, as the adapter's import does)
from payments.psp.stripe_sdk_json import _init

BODIES = [
    '{"id": "pi_1", "object": "payment_intent", "amount": 1234, "metadata": {"b": "2", "a": "1"}, '
    '"payment_method_types": ["card"], "next_action": null, "livemode": false, "x": 1.5}',
    '{"error": {"type": "card_error", "code": "card_declined", "payment_intent": {"id": "pi_2", "status": '
    '"requires_payment_method", "last_payment_error": {"code": "card_declined"}}}}',
    '{"data": [{"id": "a", "z": {"y": {"x": []}}}, {"id": "b"}], "has_more": false, "url": "/v1/x"}',
    '{"k": "caf\\u00e9 \\ud83d\\ude00", "k": "last wins", "n": 12345678901234567890, "e": {}}',
    '[]',
]


def _order(value):
    """Every object's keys in order, nested (an OrderedDict and a dict compare equal without order)."""
    if isinstance(value, dict):
        return [(k, _order(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_order(v) for v in value]
    return value


def test_the_sdks_constructor_is_the_one_replaced():
    assert _stripe_response.StripeResponse.__init__ is _init
    source = inspect.getsource(_init.replaces)
    assert "json.loads(body, object_pairs_hook=OrderedDict)" in source  # else re-check this module
    assert "StripeResponseBase.__init__(self, code, headers)" in source


@pytest.mark.parametrize("body", BODIES)
def test_the_same_data_in_the_same_order(body):
    response = _stripe_response.StripeResponse(body, 200, {"request-id": "req_1"})
    expected = json.loads(body, object_pairs_hook=OrderedDict)
    assert response.data == expected and _order(response.data) == _order(expected)
    assert (response.body, response.code, response.request_id) == (body, 200, "req_1")
