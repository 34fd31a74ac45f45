"""The pay-in path end to end: real HTTP, a real Celery worker, the real PSP sandbox."""
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.management import call_command

from conftest import wait_for
from core.tests import loopback
from ledger import accounts
from ledger import selectors as ledger_selectors
from payments.models import PaymentEvent, PaymentOrder, PaymentOrderTransition
from wallet import selectors as wallet_selectors

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def onboard(api, name):
    response = api.post("/api/v1/sellers", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def checkout(api, orders, *, key, payment_method="pm_card_visa"):
    body = {"buyer": {"reference": "buyer-42", "email": "buyer@example.com"},
            "payment_method": payment_method, "orders": orders}
    return api.post("/api/v1/checkouts", json=body, headers={"Idempotency-Key": key})


def wait_terminal(api, event_id, timeout=30):
    def terminal():
        body = api.get(f"/api/v1/checkouts/{event_id}").json()
        return body if all(o["state"] in ("succeeded", "failed") for o in body["orders"]) else None

    return wait_for(terminal, timeout=timeout, message=f"orders of {event_id} to finish")


def sandbox_money(sandbox_url):
    return loopback.get(f"{sandbox_url}/_sandbox/charges", timeout=10).json()


def assert_audit_clean():
    call_command("audit_money")  # raises CommandError on any violation


def test_multi_seller_checkout_end_to_end(api, sandbox):
    sellers = [onboard(api, f"seller {n}") for n in range(3)]
    orders = [{"seller": sellers[0], "amount": 1250, "currency": "usd"},
              {"seller": sellers[1], "amount": 990, "currency": "usd"},
              {"seller": sellers[2], "amount": 5000, "currency": "eur"}]
    response = checkout(api, orders, key="multi-1")
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["object"] == "payment_event" and len(created["orders"]) == 3

    final = wait_terminal(api, created["id"])
    assert [o["state"] for o in final["orders"]] == ["succeeded"] * 3
    assert all(o["psp_reference"].startswith("pi_") for o in final["orders"])

    for order in orders:
        assert wallet_selectors.wallet_balance(owner_id=order["seller"], currency=order["currency"]) == order["amount"]
        payable = ledger_selectors.account_balance(code=accounts.seller_payable(order["seller"]),
                                                   currency=order["currency"])
        assert payable == -order["amount"]
    assert ledger_selectors.account_balance(code=accounts.PSP_RECEIVABLE, currency="usd") == 2240
    assert ledger_selectors.trial_balance() == {"usd": 0, "eur": 0}

    order = PaymentOrder.objects.get(pk=final["orders"][0]["id"])
    steps = list(PaymentOrderTransition.objects.filter(payment_order=order).values_list("from_state", "to_state"))
    assert steps == [("", "not_started"), ("not_started", "executing"), ("executing", "succeeded")]

    money = sandbox_money(sandbox)
    assert money["totals"]["usd"]["captured"] == 2240 and money["totals"]["eur"]["captured"] == 5000
    assert money["double_charges"] == []
    assert_audit_clean()


def test_declined_payment_fails_and_moves_no_money(api, sandbox):
    seller = onboard(api, "seller")
    response = checkout(api, [{"seller": seller, "amount": 700, "currency": "usd"}], key="decline-1",
                        payment_method="pm_card_chargeDeclined")
    assert response.status_code == 201
    final = wait_terminal(api, response.json()["id"])
    order = final["orders"][0]
    assert order["state"] == "failed"
    assert order["failure_code"] == "generic_decline"
    assert wallet_selectors.wallet_balance(owner_id=seller, currency="usd") == 0
    assert ledger_selectors.trial_balance() == {}
    assert sandbox_money(sandbox)["totals"].get("usd", {}).get("captured", 0) == 0
    assert_audit_clean()


def test_same_key_same_body_replays_and_other_body_is_refused(api):
    seller = onboard(api, "seller")
    orders = [{"seller": seller, "amount": 1500, "currency": "gbp"}]
    first = checkout(api, orders, key="replay-1")
    second = checkout(api, orders, key="replay-1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers

    other = checkout(api, [{"seller": seller, "amount": 1501, "currency": "gbp"}], key="replay-1")
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert PaymentEvent.objects.count() == 1
    wait_terminal(api, first.json()["id"])
    assert wallet_selectors.wallet_balance(owner_id=seller, currency="gbp") == 1500


def test_twenty_concurrent_requests_with_one_key_create_one_payment_event(api, live_server):
    seller = onboard(api, "seller")
    orders = [{"seller": seller, "amount": 2000, "currency": "usd"}]
    barrier = threading.Barrier(20)

    def post(_):
        barrier.wait()
        return checkout(api, orders, key="twenty-twins")

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(post, range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = [r.json() for r in responses if r.status_code == 201]
    assert created and all(body == created[0] for body in created)
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.json()["error"]["code"] == "idempotency_key_in_use"
    assert PaymentEvent.objects.count() == 1
    assert PaymentOrder.objects.count() == 1
    wait_terminal(api, created[0]["id"])
    assert wallet_selectors.wallet_balance(owner_id=seller, currency="usd") == 2000
    assert checkout(api, orders, key="twenty-twins").json() == created[0]


def test_fifty_concurrent_orders_for_one_seller(api, sandbox):
    seller = onboard(api, "busy seller")
    amounts = [100 + n for n in range(50)]

    def post(n):
        response = checkout(api, [{"seller": seller, "amount": amounts[n], "currency": "usd"}], key=f"busy-{n}")
        assert response.status_code == 201, response.text
        return response.json()["id"]

    with ThreadPoolExecutor(max_workers=10) as pool:
        event_ids = list(pool.map(post, range(50)))
    wait_for(lambda: PaymentOrder.objects.filter(state="succeeded").count() == 50, timeout=90,
             message="50 orders to succeed")
    assert len(set(event_ids)) == 50
    total = sum(amounts)
    assert wallet_selectors.wallet_balance(owner_id=seller, currency="usd") == total
    assert ledger_selectors.account_balance(code=accounts.seller_payable(seller), currency="usd") == -total
    assert sandbox_money(sandbox)["totals"]["usd"]["captured"] == total
    assert_audit_clean()
