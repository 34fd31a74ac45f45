"""The PSP's own rules on amounts, applied at checkout: refused with a 400 before anything is sent."""
import json

import pytest
from rest_framework.test import APIClient

from core.services import api_client_create
from payments.models import PaymentEvent
from payments.psp.stripe_currencies import from_stripe, psp_amount_problem, to_stripe
from payments.tests.factories import SellerFactory


@pytest.mark.parametrize(("amount", "currency", "sent"), [
    (1999, "usd", 1999),  # two decimals on both sides
    (500, "jpy", 500),  # zero-decimal on both sides
    (5, "isk", 500),  # ISO: no decimals; Stripe: two, always 00
    (5, "ugx", 500),
    (1200, "mga", 12),  # ISO: two decimals; Stripe: none
    (12340, "kwd", 12340),  # three decimals, ending in 0
    (18050, "huf", 18050),  # HUF and TWD are whole for payouts only
])
def test_amounts_are_sent_in_the_psps_units_and_read_back_in_ours(amount, currency, sent):
    assert psp_amount_problem(amount, currency) is None
    assert to_stripe(amount, currency) == sent
    assert from_stripe(sent, currency) == amount


@pytest.mark.parametrize(("amount", "currency", "code"), [
    (49, "usd", "amount_too_small"),  # Stripe's minimum charge is 0.50 USD
    (29, "gbp", "amount_too_small"),
    (49, "jpy", "amount_too_small"),
    (1234, "mga", "amount_not_whole"),  # MGA is charged in whole ariary
    (1005, "kwd", "amount_invalid_precision"),  # three-decimal amounts must end in 0
    (1_000_000, "isk", "amount_too_large"),  # 100,000,000 in Stripe's units: over eight digits
    (5000, "iqd", "currency_not_supported"),  # ISO 4217, but not a currency Stripe charges in
])
def test_amounts_the_psp_would_refuse_are_named(amount, currency, code):
    problem = psp_amount_problem(amount, currency)
    assert problem is not None and problem.code == code
    assert currency.upper() in problem.message


@pytest.mark.django_db
@pytest.mark.parametrize(("amount", "currency", "code"), [
    (49, "usd", "amount_too_small"), (1005, "kwd", "amount_invalid_precision"), (1234, "mga", "amount_not_whole"),
])
def test_checkout_refuses_what_the_psp_would_refuse_and_stores_nothing(amount, currency, code):
    client, key = api_client_create(name="shop")
    sellers = [SellerFactory(client=client) for _ in range(2)]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    orders = [{"seller": sellers[0].id, "amount": 5000, "currency": "usd"},
              {"seller": sellers[1].id, "amount": amount, "currency": currency}]
    body = {"buyer": {"reference": "buyer-1"}, "payment_method": "pm_card_visa", "orders": orders}
    response = api.generic("POST", "/api/v1/checkouts", json.dumps(body), content_type="application/json",
                           HTTP_IDEMPOTENCY_KEY="k-1")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["param"] == "orders[1].amount"
    assert sellers[1].id in error["message"]
    assert PaymentEvent.objects.count() == 0
