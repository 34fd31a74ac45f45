"""The worker's database connections die under it (PostgreSQL restarted, backends terminated) during an order's
PSP call: the pool's health check replaces them, and a dead one met anyway fails that attempt, which is retried;
the order still ends succeeded, charged and credited exactly once."""
import time

import pytest
from django.db import connection

from conftest import wait_for
from payments.models import PaymentOrder, PaymentOrderState
from payments.tests.test_checkout_flow import assert_audit_clean, checkout, onboard, sandbox_money
from payments.tests.test_psp_faults import configure, wait_state
from wallet import selectors as wallet_selectors

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def terminate_other_backends() -> int:
    """Every other session on the test database: the worker's pooled connections (the live server's
    requests each open and close their own, and this test's connection is spared)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                       "AND backend_type = 'client backend'")
        return cursor.fetchone()[0]


def test_the_workers_connections_terminated_during_the_psp_call_the_order_succeeds_once(api, sandbox):
    seller = onboard(api, "seller")
    warm = checkout(api, [{"seller": seller, "amount": 700, "currency": "usd"}], key="warm")
    wait_state(PaymentOrder.objects.get(pk=warm.json()["orders"][0]["id"]), "succeeded")  # the pool is open

    configure(sandbox, latency_ms=[1500, 1500])  # each PSP call takes 1.5 s: time to kill what the pool holds
    response = checkout(api, [{"seller": seller, "amount": 1000, "currency": "usd"}], key="k-terminated")
    assert response.status_code == 201, response.text
    order = PaymentOrder.objects.get(pk=response.json()["orders"][0]["id"])
    wait_for(lambda: PaymentOrder.objects.get(pk=order.pk).state == PaymentOrderState.EXECUTING, timeout=30,
             message="the order's PSP call")
    time.sleep(0.2)  # the claim committed; its thread handed its connection back before calling the PSP
    assert terminate_other_backends() >= 1
    configure(sandbox, latency_ms=[0, 0])

    order = wait_state(order, "succeeded", "failed", "dead_letter", "unknown", timeout=60)
    assert order.state == PaymentOrderState.SUCCEEDED
    money = sandbox_money(sandbox)
    assert money["totals"]["usd"]["count"] == 2 and money["double_charges"] == []  # the warm-up's and this one
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 1700
    assert_audit_clean()
