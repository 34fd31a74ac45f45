"""Round trips to PostgreSQL per operation, pinned so they don't creep back (README, "Speed").

A settled order: one statement to claim it (lock, count the attempt, start it with its audit row,
and read it back with its event: committed on its own, payments.services.order_rows), then one
transaction to record the PSP's answer (the transition with its audit row, guarded by the claimed row's
values, so no second read or lock of the order, and the decision counted on its payment event, in one
statement: payments.services.execution, checkout_outcome; for the order that decides the event, the
event's transition with its audit row in one, then the ledger posting and the wallet movement in one
statement, the wallet's row locked last: a hot seller's orders queue on it; payments.services.postings)
with its BEGIN and COMMIT. The order measured is its event's only order, so it decides the event: 5 + 1 = 6
(an order that does not decide its event costs 5; 7 and 6 while the posting and the movement were two
statements, 8 and 7 while the transition and the count were two, 9 and 8 while the answer's transaction
locked and read the order again). A seller's first order in a currency opens its ledger account and wallet:
three statements more (each opened, then the posting and the movement run again). A
checkout: the API client, then one statement that commits on its own (no BEGIN, no COMMIT): the sellers checked,
the idempotency claim with the response stored (INSERT ... ON CONFLICT DO NOTHING under the key's advisory lock:
the response, the orders shown as created, is known before they are written; nothing claimed if a seller is
refused), the event with its orders and their audit rows written if and only if the key was claimed
(core.services.ClaimedRows, payments.services.checkout_write.CheckoutRows): 2 (5 while the claim and the rows were
two statements in a transaction with its BEGIN and COMMIT, 6 while the response was stored by an UPDATE after the
rows, 7 while the sellers were checked in a query of their own, 8 while the claim committed on its own and was
locked again in the checkout's transaction).
A checkout of two orders, executed by its event's task end to end: the event with its buyer's stored customer
and its orders read in one statement; for a new buyer one PSP call (the customer with the card attached), the
customer stored and the event's payment method kept (in one statement); for a returning buyer the attach
call and the event's payment method kept; then each order as above (5, and 6 for the one that decides the
event; each claim reads the order alone, given the event the task read): 13 statements and 2 transactions for
a new buyer or a returning one (15 while the posting and the movement were two statements, 17 while the
transition and the count were two statements, 18 for a new buyer while its customer was stored in a
statement of its own; 20 and 19 with the second read of each order; before: 11 statements and 2
transactions in the event's task, then 17 in two order tasks: 28 and 4; 4 PSP calls, 3 tasks).
"""
import json

import pytest
from rest_framework.test import APIClient

from conftest import wait_for
from core.services import api_client_create
from payments import services
from payments.models import PaymentOrder, PSPCustomer
from payments.tasks import payment_event_execute_task
from payments.tests.factories import PaymentEventFactory, PaymentOrderFactory, SellerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_settled_order_costs_five_statements_and_one_transaction(sandbox, django_assert_max_num_queries):
    """The claim; in one transaction the decision, its count, the capture's posting and credit in one statement,
    then the event's own decision (its last order)."""
    seller = SellerFactory()
    services.payment_order_execute(payment_order_id=PaymentOrderFactory(seller=seller).id)  # account and wallet
    order = PaymentOrderFactory(seller=seller)
    with django_assert_max_num_queries(5) as captured:
        assert services.payment_order_execute(payment_order_id=order.id) == "succeeded"
    assert [q["sql"] for q in captured.captured_queries].count("COMMIT") == 1


def test_a_new_sellers_first_order_opens_its_account_and_wallet_in_three_more(sandbox,
                                                                            django_assert_max_num_queries):
    order = PaymentOrderFactory()
    with django_assert_max_num_queries(8) as captured:
        assert services.payment_order_execute(payment_order_id=order.id) == "succeeded"
    statements = [q["sql"] for q in captured.captured_queries]
    assert statements.count("COMMIT") == 1
    assert sum(s.startswith("INSERT INTO ledger_account") for s in statements) == 1
    # the wallet opened with its slots in one statement (a CTE: wallet.services._OPEN_SQL)
    assert sum("INSERT INTO wallet_wallet (owner_id" in s for s in statements) == 1


def test_a_checkout_of_two_orders_costs_two_statements(celery_worker, sandbox, django_assert_max_num_queries):
    client, key = api_client_create(name="shop")
    sellers = [SellerFactory(client=client) for _ in range(2)]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    body = json.dumps({"buyer": {"reference": "b"}, "payment_method": "pm_card_visa",
                       "orders": [{"seller": s.id, "amount": 1000, "currency": "usd"} for s in sellers]})
    with django_assert_max_num_queries(2) as captured:
        response = api.generic("POST", "/api/v1/checkouts", body, content_type="application/json",
                               HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 201
    statements = [q["sql"] for q in captured.captured_queries]
    assert "BEGIN" not in statements and "COMMIT" not in statements  # one statement, committed on its own
    assert "ON CONFLICT (client_id, key) DO NOTHING" in statements[1]  # the claim,
    assert "response_body" in statements[1]  # with the response stored,
    assert "INSERT INTO payments_paymentorder" in statements[1]  # and the rows
    # The worker executes the orders: let it finish before the test's tables are emptied.
    wait_for(lambda: not PaymentOrder.objects.exclude(state__in=["succeeded", "failed"]).exists(),
             message="the checkout's orders")


@pytest.mark.parametrize(("returning", "most"), [(False, 13), (True, 13)])
def test_an_event_of_two_orders_costs_one_task_and_two_transactions(sandbox, django_assert_max_num_queries,
                                                                    returning, most):
    sellers = [SellerFactory() for _ in range(2)]
    for seller in sellers:  # their accounts and wallets
        services.payment_order_execute(payment_order_id=PaymentOrderFactory(seller=seller).id)
    event = PaymentEventFactory(psp_payment_method="", buyer_reference="buyer-new")
    if returning:
        payment_event_execute_task.apply(kwargs={"payment_event_id": PaymentOrderFactory(
            payment_event=PaymentEventFactory(client=event.client, psp_payment_method="", buyer_reference="buyer-new"),
            seller=sellers[0]).payment_event_id})
        assert PSPCustomer.objects.count() == 1
    orders = [PaymentOrderFactory(payment_event=event, seller=seller) for seller in sellers]
    with django_assert_max_num_queries(most) as captured:
        assert payment_event_execute_task.apply(kwargs={"payment_event_id": event.id}).get() == 2
    assert [q["sql"] for q in captured.captured_queries].count("COMMIT") == 2
    assert {o.state for o in PaymentOrder.objects.filter(pk__in=[o.pk for o in orders])} == {"succeeded"}
