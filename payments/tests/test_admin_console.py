"""The operators' console for payments (issue 15): one search box that finds a payment by anything an
operator knows of it, lists that fit (formatted amount, short state badge, newest first, range filters), and
a payment's timeline. Logged in as a payment operator, against the real PostgreSQL."""
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.tests.helpers import operator_client
from payments.models import PaymentEvent, PaymentOrder, WebhookEvent
from payments.psp.base import PaymentResult, PaymentStatus, RefundResult
from payments.services import payment_order_apply_result
from payments.services.order_rows import order_claim
from payments.services.refunds import refund_apply_result, refund_create
from payments.tests.factories import ApiClientFactory, PaymentEventFactory, PaymentOrderFactory, SellerFactory
from reconciliation.models import Break, ReconciliationRun, SettlementFile, SettlementLine

pytestmark = pytest.mark.django_db

ORDERS = "/admin/payments/paymentorder/"
EVENTS = "/admin/payments/paymentevent/"


@pytest.fixture
def operator():
    return operator_client()


def _succeed(order, psp_reference):
    order_claim(order.id, actor="task:payment_order_execute", reason="attempt 1",
                next_action_at=timezone.now() + timedelta(seconds=30))
    payment_order_apply_result(payment_order_id=order.id, actor="task:payment_order_execute", result=PaymentResult(
        status=PaymentStatus.SUCCEEDED, psp_reference=psp_reference, amount=order.amount, currency=order.currency))


@pytest.fixture
def payments():
    """Two checkouts. Ann's (buyer-42): 49.99 USD to Alpha Books (succeeded, refunded 10.00 and then 5.00 that
    failed, a charge and a refund webhook, settled on a Stripe line in payout po_9, an open break) and
    25,000 JPY to Bravo Tools. Bob's: 12.50 USD to Alpha Books, failed, known to settlement only as ch_3."""
    shop = ApiClientFactory()
    alpha, bravo = SellerFactory(client=shop, name="Alpha Books"), SellerFactory(client=shop, name="Bravo Tools")
    ann = PaymentEventFactory(client=shop, buyer_reference="buyer-42", buyer_email="ann@example.com")
    bob = PaymentEventFactory(client=shop, buyer_reference="buyer-7", buyer_email="bob@example.com")
    o1 = PaymentOrderFactory(payment_event=ann, seller=alpha, amount=4999, currency="usd")
    o2 = PaymentOrderFactory(payment_event=ann, seller=bravo, amount=25000, currency="jpy")
    o3 = PaymentOrderFactory(payment_event=bob, seller=alpha, amount=1250, currency="usd")
    _succeed(o1, "pi_1")
    _succeed(o2, "pi_2")
    order_claim(o3.id, actor="task:payment_order_execute", reason="attempt 1",
                next_action_at=timezone.now() + timedelta(seconds=30))
    payment_order_apply_result(payment_order_id=o3.id, actor="webhook:evt_3", result=PaymentResult(
        status=PaymentStatus.FAILED, psp_reference="pi_3", amount=1250, currency="usd",
        failure_code="card_declined", failure_message="Your card was declined."))
    refund = refund_create(client=shop, payment_order_id=o1.id, amount=1000, reason="damaged", actor="api:shop")
    refund_apply_result(refund_id=refund.id, actor="webhook:evt_re", result=RefundResult(
        status=PaymentStatus.SUCCEEDED, psp_reference="re_1", amount=1000, currency="usd"))
    failed_refund = refund_create(client=shop, payment_order_id=o1.id, amount=500, reason="goodwill", actor="api:shop")
    refund_apply_result(refund_id=failed_refund.id, actor="task:refund_execute", result=RefundResult(
        status=PaymentStatus.FAILED, psp_reference="re_2", amount=500, currency="usd", failure_code="expired"))
    WebhookEvent.objects.create(id="evt_ch", type="charge.succeeded", object_id="ch_1", status="ignored",
                                payload={"id": "evt_ch", "type": "charge.succeeded", "data": {"object": {
                                    "id": "ch_1", "object": "charge", "payment_intent": "pi_1"}}})
    WebhookEvent.objects.create(id="evt_re", type="refund.updated", object_id="re_1", status="processed",
                                payload={"id": "evt_re", "type": "refund.updated", "data": {"object": {
                                    "id": "re_1", "object": "refund", "payment_intent": "pi_1"}}})
    run = ReconciliationRun.objects.create(date=timezone.now().date(), actor="test")
    file = SettlementFile.objects.create(sha256="a" * 64, name="stripe-day.csv", format="stripe", size=1,
                                         imported_by="test", reconciled_at=timezone.now(), reconciled_run=run)
    line = SettlementLine.objects.create(file=file, ordinal=1, line_number=2, record_type="charge",
                                         psp_reference="pi_1", source_reference="ch_1", payout_reference="po_9",
                                         currency="usd", gross=4999, fee=175, net=4824, occurred_at=timezone.now())
    SettlementLine.objects.create(file=file, ordinal=2, line_number=3, record_type="charge", psp_reference="pi_3",
                                  source_reference="ch_3", currency="usd", gross=1250, fee=66, net=1184)
    Break.objects.create(key=f"amount_mismatch:object:{o1.id}", break_class="amount_mismatch", run=run,
                         last_seen_run=run, line=line, expected_amount=4999, expected_currency="usd",
                         actual_amount=4899, actual_currency="usd", object_kind="payment_order", object_id=o1.id,
                         psp_reference="pi_1", description="the PSP settled 1.00 less")
    # Created on three days: Bob's checkout first.
    for order, day, second in ((o3, 10, 0), (o1, 12, 1), (o2, 12, 2)):
        PaymentOrder.objects.filter(pk=order.pk).update(created_at=datetime(2026, 3, day, 9, 30, second, tzinfo=UTC))
    PaymentEvent.objects.filter(pk=bob.pk).update(created_at=datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    PaymentEvent.objects.filter(pk=ann.pk).update(created_at=datetime(2026, 3, 12, 9, 0, tzinfo=UTC))
    for order in (o1, o2, o3):
        order.refresh_from_db()
    return {"ann": ann, "bob": bob, "o1": o1, "o2": o2, "o3": o3, "refund": refund, "line": line,
            "break": Break.objects.get()}


def _found(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200, response
    changelist = response.context["cl"]
    ids = [obj.pk for obj in changelist.result_list]
    assert changelist.result_count == len(ids)
    return ids, response


@pytest.mark.parametrize("term, expected", [
    ("buyer-42", ["o2", "o1"]),
    ("ANN@example.com", ["o2", "o1"]),
    ("ann@", ["o2", "o1"]),
    ("Alpha", ["o1", "o3"]),
    ("bravo tools", ["o2"]),
    ("49.99", ["o1"]),
    ("4999", ["o1"]),  # minor units
    ("25000", ["o2"]),  # 25,000 JPY (no minor unit)
    ("25,000", ["o2"]),
    ("12.5", ["o3"]),
    ("pi_1", ["o1"]),
    ("ch_1", ["o1"]),  # the charge, known from its webhook and its settlement line
    ("re_1", ["o1"]),
    ("ch_3", ["o3"]),  # known to the settlement report only
    ("po_9", ["o1"]),  # the payout that settled it
    ("nothing-like-it", []),
    ("0.01", []),
])
def test_one_box_finds_an_order_by_anything_known_of_it(operator, payments, term, expected):
    ids, _ = _found(operator, ORDERS, q=term)
    assert ids == [payments[name].pk for name in expected]


def test_the_box_finds_orders_by_our_ids(operator, payments):
    o1 = payments["o1"]
    assert _found(operator, ORDERS, q=o1.pk)[0] == [o1.pk]
    assert _found(operator, ORDERS, q=payments["refund"].pk)[0] == [o1.pk]
    assert _found(operator, ORDERS, q=payments["ann"].pk)[0] == [payments["o2"].pk, o1.pk]
    assert set(_found(operator, ORDERS, q=o1.seller_id)[0]) == {o1.pk, payments["o3"].pk}


@pytest.mark.parametrize("term, expected", [
    ("pi_1", ["ann"]), ("ch_3", ["bob"]), ("Alpha", ["ann", "bob"]), ("buyer-7", ["bob"]), ("49.99", ["ann"]),
    ("bob@example.com", ["bob"]), ("re_1", ["ann"]), ("no-such-thing", []),
])
def test_one_box_finds_a_checkout_and_counts_its_orders_once(operator, payments, term, expected):
    ids, response = _found(operator, EVENTS, q=term)
    assert ids == [payments[name].pk for name in expected]
    counts = {event.pk: event.order_total for event in response.context["cl"].result_list}
    assert all(counts[payments[name].pk] == {"ann": 2, "bob": 1}[name] for name in expected)


def test_the_checkout_search_no_longer_multiplies_the_order_count(operator, payments):
    """The old search joined the orders twice (id, PSP reference): two orders showed as four."""
    ids, response = _found(operator, EVENTS, q="pi_1")
    assert ids == [payments["ann"].pk] and response.context["cl"].result_list[0].order_total == 2
    page = re.sub(r"\s+", " ", response.content.decode())
    assert '<td class="field-order_count">2</td>' in page
    assert "1 result (" in page and "2 total" in page


def test_lists_are_newest_first_with_a_created_column_and_a_date_hierarchy(operator, payments):
    ids, response = _found(operator, ORDERS)
    assert ids == [payments["o2"].pk, payments["o1"].pk, payments["o3"].pk]
    assert response.context["cl"].date_hierarchy == "created_at"
    assert _found(operator, EVENTS)[0] == [payments["ann"].pk, payments["bob"].pk]
    assert _found(operator, ORDERS, created_at__day="10", created_at__month="3",
                  created_at__year="2026")[0] == [payments["o3"].pk]


@pytest.mark.parametrize("params, expected", [
    ({"amount_from": "20", "amount_to": "100"}, ["o1"]),  # 49.99 USD; not 25,000 JPY, not 12.50 USD
    ({"amount_from": "100"}, ["o2"]),
    ({"amount_to": "49.99"}, ["o1", "o3"]),
    ({"amount_to": "49.98"}, ["o3"]),
    ({"amount_from": "12.50", "currency__exact": "usd"}, ["o1", "o3"]),
    ({"created_from": "2026-03-11"}, ["o2", "o1"]),
    ({"created_to": "2026-03-10"}, ["o3"]),
    ({"created_from": "2026-03-10", "created_to": "2026-03-12", "amount_to": "20"}, ["o3"]),
])
def test_amount_and_date_range_filters(operator, payments, params, expected):
    assert _found(operator, ORDERS, **params)[0] == [payments[name].pk for name in expected]


@pytest.mark.parametrize("params", [{"amount_from": "lots"}, {"amount_to": "NaN"}, {"created_from": "2026-02-30"},
                                    {"created_to": "yesterday"}])
def test_a_range_filter_refuses_what_it_cannot_read(operator, payments, params):
    response = operator.get(ORDERS, params)
    assert response.status_code == 302 and "e=1" in response["Location"]


def test_the_events_list_filters_by_created_range(operator, payments):
    assert _found(operator, EVENTS, created_from="2026-03-11")[0] == [payments["ann"].pk]


def test_the_orders_list_shows_the_columns_that_matter_formatted(operator, payments):
    _, response = _found(operator, ORDERS)
    page = response.content.decode()
    table = page[page.index('id="result_list"'):]
    header = [re.sub(r"^\d+ +", "", re.sub(r"<[^>]+>|\s+", " ", h).strip())  # less a sort priority
              for h in re.findall(r"<th[^>]*scope=\"col\"[^>]*>(.*?)</th>", table, re.S)]
    assert [h for h in header if h] == ["Id", "Amount", "State", "PSP reference", "Calls", "Failure", "Seller",
                                        "Created (UTC)", "Timeline"]
    assert "49.99 USD" in page and "25,000 JPY" in page and "12.50 USD" in page
    assert "4999" not in re.sub(r"<[^>]+>", " ", page)
    # A short badge, the long explanation in its title; the failure's message in the code's title.
    assert '<span class="state-badge state-bad" title="Failed">failed</span>' in page
    assert '<span class="state-badge state-ok" title="Succeeded">succeeded</span>' in page
    assert 'title="Your card was declined.">card_declined<' in page
    assert "white-space: nowrap" in page
    timeline = f'href="/admin/payments/paymentorder/{payments["o1"].pk}/timeline/"'
    assert timeline in page


def test_change_pages_link_to_the_timeline(operator, payments):
    o1, ann = payments["o1"], payments["ann"]
    assert f"/admin/payments/paymentorder/{o1.pk}/timeline/" in operator.get(
        f"{ORDERS}{o1.pk}/change/").content.decode()
    event_page = operator.get(f"{EVENTS}{ann.pk}/change/").content.decode()
    assert f"/admin/payments/paymentevent/{ann.pk}/timeline/" in event_page
    assert f"/admin/payments/paymentorder/{o1.pk}/timeline/" in event_page  # each order of the checkout
    assert f"/admin/payments/paymentevent/{ann.pk}/timeline/" in operator.get(EVENTS).content.decode()


def _rows(response):
    return [(row.kind, row.title, row.money, url) for row, url in response.context["rows"]]


def test_an_orders_timeline_tells_its_whole_story_in_time_order(operator, payments):
    o1, refund, line, brk = payments["o1"], payments["refund"], payments["line"], payments["break"]
    response = operator.get(f"{ORDERS}{o1.pk}/timeline/")
    assert response.status_code == 200
    rows = _rows(response)
    kinds = [kind for kind, *_ in rows]
    assert set(kinds) == {"created", "psp_request", "transition", "refund", "refund_transition", "webhook",
                          "ledger", "wallet", "settlement", "break"}
    times = [row.at for row, _ in response.context["rows"]]
    assert times == sorted(times)
    assert kinds.index("created") < kinds.index("psp_request") < kinds.index("transition") < kinds.index("ledger")
    assert ("psp_request", "not_started → executing (sent to the PSP)", "", "") in rows
    assert ("transition", "executing → succeeded", "", "") in rows
    assert ("created", "Order created for Alpha Books", "49.99 USD", "") in rows
    assert ("refund", f"Refund {refund.pk} requested", "10.00 USD", f"/admin/payments/refund/{refund.pk}/change/") \
        in rows
    assert [t for k, t, *_ in rows if k == "refund_transition"] == [" → pending", "pending → succeeded",
                                                                   " → pending", "pending → failed"]
    assert {t for k, t, *_ in rows if k == "webhook"} == {"Webhook charge.succeeded", "Webhook refund.updated"}
    ledger = [(t, url) for k, t, _, url in rows if k == "ledger"]
    assert [t for t, _ in ledger] == [f"Capture of payment order {o1.pk}",
                                      f"Refund {refund.pk} of payment order {o1.pk}"]
    assert all(re.fullmatch(r"/admin/ledger/ledgertransaction/\d+/change/", url) for _, url in ledger)
    assert [m for k, _, m, _ in rows if k == "wallet"] == ["49.99 USD", "-10.00 USD"]
    assert ("settlement", f"Settlement line: charge, matched to {o1.pk}", "49.99 USD",
            f"/admin/reconciliation/settlementline/{line.pk}/change/") in rows
    assert ("break", "Break: amount_mismatch (open)", "", f"/admin/reconciliation/break/{brk.pk}/change/") in rows
    page = re.sub(r"\s+", " ", response.content.decode())
    assert re.search(r"<time datetime=\"[^\"]+\">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</time>", page)  # to the second
    for shown in ("Dr assets:psp_receivable 49.99 USD", f"Cr liabilities:seller_payable:{o1.seller_id} 49.99 USD",
                  "fee 1.75 USD", "net 48.24 USD", "our books 49.99 USD", "PSP/bank 48.99 USD", "10.00 USD"):
        assert shown in page, shown
    assert "4999" not in re.sub(r"<[^>]+>", " ", page)


def test_an_events_timeline_holds_every_orders_story(operator, payments):
    ann, o1, o2 = payments["ann"], payments["o1"], payments["o2"]
    response = operator.get(f"{EVENTS}{ann.pk}/timeline/")
    assert response.status_code == 200
    rows = [(row.kind, row.subject, row.title) for row, _ in response.context["rows"]]
    assert ("created", ann.pk, "Checkout by buyer-42") in rows
    assert {("transition", o.pk, "executing → succeeded") for o in (o1, o2)} <= set(rows)
    assert {kind for kind, *_ in rows} >= {"refund", "webhook", "ledger", "wallet", "settlement", "break"}
    page = response.content.decode()
    assert "25,000 JPY" in page and f"/admin/payments/paymentorder/{o2.pk}/timeline/" in page


def test_a_failed_orders_timeline_shows_the_psp_failure(operator, payments):
    o3 = payments["o3"]
    response = operator.get(f"{ORDERS}{o3.pk}/timeline/")
    rows = [(row.kind, row.title, row.actor, row.detail) for row, _ in response.context["rows"]]
    assert any(k == "transition" and t == "executing → failed" and a == "webhook:evt_3" for k, t, a, _ in rows)
    assert any(k == "settlement" for k, *_ in rows)
    assert "card_declined: Your card was declined." in response.content.decode()


def test_timelines_are_not_shown_to_who_may_not_see_payments(payments):
    user = User.objects.create_user("nobody", password="x" * 16, is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.get(f"{ORDERS}{payments['o1'].pk}/timeline/").status_code == 403
    assert Client().get(f"{ORDERS}{payments['o1'].pk}/timeline/").status_code == 302  # to the login


def test_an_unknown_order_has_no_timeline(operator, payments):
    assert operator.get(f"{ORDERS}ord_missing/timeline/").status_code in (302, 404)


def _more_checkouts(n, event):
    """``n`` more checkouts of two succeeded orders each, and ``n`` more succeeded orders on ``event``."""
    for seller in SellerFactory.create_batch(n, client=event.client):
        _succeed(PaymentOrderFactory(payment_event=event, seller=seller, amount=300), f"pi_more_{seller.pk}")
    shop = ApiClientFactory()
    for i in range(n):
        event = PaymentEventFactory(client=shop, buyer_reference=f"bulk-{i}")
        for seller in SellerFactory.create_batch(2, client=shop):
            order = PaymentOrderFactory(payment_event=event, seller=seller, amount=100 + i)
            _succeed(order, f"pi_bulk_{order.pk}")


def test_no_n_plus_one_on_the_lists_and_timelines(operator, payments, django_assert_max_num_queries):
    def counts():
        found = {}
        for url, params in ((ORDERS, {}), (ORDERS, {"q": "Alpha"}), (ORDERS, {"q": "ch_1"}), (EVENTS, {}),
                            (EVENTS, {"q": "Alpha"}), (f"{EVENTS}{payments['ann'].pk}/timeline/", {}),
                            (f"{ORDERS}{payments['o1'].pk}/timeline/", {})):
            with CaptureQueriesContext(connection) as ctx:
                assert operator.get(url, params).status_code == 200
            found[(url, tuple(params.items()))] = len(ctx)
        return found

    before = counts()
    _more_checkouts(8, payments["ann"])
    assert counts() == before  # more rows, not more statements
    with django_assert_max_num_queries(12):
        operator.get(ORDERS, {"q": "Alpha", "amount_from": "1", "created_from": "2026-01-01"})
    with django_assert_max_num_queries(11):
        operator.get(EVENTS, {"q": "Alpha"})
    # The timelines: one statement each more since they show the orders' disputes (config/admin_site.py).
    with django_assert_max_num_queries(22):
        operator.get(f"{EVENTS}{payments['ann'].pk}/timeline/")
    with django_assert_max_num_queries(19):
        operator.get(f"{ORDERS}{payments['o1'].pk}/timeline/")


def test_a_range_filter_keeps_the_search_and_other_filters(operator, payments):
    page = operator.get(ORDERS, {"q": "Alpha", "state__exact": "succeeded", "amount_from": "20"}).content.decode()
    forms = re.findall(r'<form method="get" class="range-filter">(.*?)</form>', page, re.S)
    amount = next(f for f in forms if 'name="amount_from"' in f)
    assert '<input type="hidden" name="q" value="Alpha">' in amount
    assert '<input type="hidden" name="state__exact" value="succeeded">' in amount
    assert 'name="amount_from" value="20"' in amount and 'type="hidden" name="amount_from"' not in amount
