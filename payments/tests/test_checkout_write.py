"""``payments.services.checkout_write``: a checkout's rows written without the ORM are the rows the ORM wrote
(every column, timestamps in the same order), and its answer is exactly ``PaymentEventOutput``'s."""
import json
import re
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from core.db import objects_insert
from payments.models import PaymentEvent, PaymentOrder, PaymentOrderState, PaymentOrderTransition
from payments.serializers import PaymentEventOutput, checkout_output
from payments.services import OrderSpec, payment_event_create, payment_event_write
from payments.services.checkout_write import _INSERT, NewCheckout, NewOrder
from payments.tests.factories import ApiClientFactory, SellerFactory

pytestmark = pytest.mark.django_db

_CURRENCIES = ["usd", "eur", "jpy", "kwd", "gbp"]
_SHAPES = [  # orders, return_url, buyer_email, PAYMENTS_PUBLIC_URL
    (1, "", "", ""),
    (2, "", "b@example.com", ""),
    (3, "https://shop.example/back?x=1", "", ""),
    (4, "https://shop.example/é", "ü@example.com", "https://pay.example/"),
    (5, "", "b@example.com", "https://pay.example"),
]


class _Rolled(Exception):
    pass


def _orm_payment_event_create(checkout: NewCheckout) -> None:
    """The checkout's rows as the ORM wrote them before (main at 43ccacb: model instances, ``objects_insert``),
    with ``checkout``'s ids; ``timezone.now`` is patched by the caller to give its timestamps in turn."""
    event = PaymentEvent(
        id=checkout.id, client_id=checkout.client_id, buyer_reference=checkout.buyer_reference,
        buyer_email=checkout.buyer_email, payment_method=checkout.payment_method,
        idempotency_key=checkout.idempotency_key, return_url=checkout.return_url,
        psp_return_url=checkout.psp_return_url, psp_payment_method=checkout.psp_payment_method)
    created = [PaymentOrder(id=o.id, payment_event=event, seller_id=o.seller_id, amount=o.amount, currency=o.currency,
                            next_action_at=checkout.next_action_at) for o in checkout.orders]
    audit = [PaymentOrderTransition(payment_order=o, from_state="", to_state=PaymentOrderState.NOT_STARTED,
                                    actor=checkout.actor, reason="checkout created") for o in created]
    objects_insert([event], created, audit)


def _rows(event_id: str) -> dict[str, list[tuple]]:
    """Every column of the event's rows (the audit rows' serial id left out), in a fixed order."""
    with connection.cursor() as cur:
        cur.execute("SELECT * FROM payments_paymentevent WHERE id = %s", [event_id])
        event = cur.fetchall()
        cur.execute("SELECT * FROM payments_paymentorder WHERE payment_event_id = %s ORDER BY id", [event_id])
        orders = cur.fetchall()
        cur.execute("SELECT t.* FROM payments_paymentordertransition t JOIN payments_paymentorder o"
                    " ON o.id = t.payment_order_id WHERE o.payment_event_id = %s ORDER BY o.id", [event_id])
        audit = [row[1:] for row in cur.fetchall()]
    return {"event": event, "orders": orders, "audit": audit}


def _checkout(client, sellers, n: int, return_url: str, email: str, **extra) -> NewCheckout:
    orders = [OrderSpec(sellers[i].id, 1000 * (i + 1) + 10 * i, _CURRENCIES[i]) for i in range(n)]
    return payment_event_write(client=client, buyer_reference="buyer-42 ✓", buyer_email=email,
                               payment_method="pm_card_visa", orders=orders, idempotency_key=f"k-{n}",
                               return_url=return_url, public_url="http://testserver/" if return_url else "", **extra)


@pytest.mark.parametrize(("n", "return_url", "email", "public_url"), _SHAPES)
def test_the_rows_are_the_orms_rows(n, return_url, email, public_url, django_assert_num_queries):
    client = ApiClientFactory()
    sellers = [SellerFactory(client=client) for _ in range(n)]
    with override_settings(PAYMENTS_PUBLIC_URL=public_url), transaction.atomic():
        with django_assert_num_queries(1):  # the one insert, which checks the sellers too
            checkout = _checkout(client, sellers, n, return_url, email)
        ours = _rows(checkout.id)
        urls = PaymentEvent.objects.values_list("psp_return_url", "return_url").get(pk=checkout.id)
        transaction.set_rollback(True)
    assert ours["event"] and len(ours["orders"]) == len(ours["audit"]) == n
    stamps = [checkout.created_at, *[t for o in checkout.orders for t in (o.created_at, o.updated_at)],
              *[o.audit_created_at for o in checkout.orders]]
    assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False))  # in turn, at least a microsecond apart
    with transaction.atomic(), mock.patch("django.utils.timezone.now", side_effect=stamps):
        _orm_payment_event_create(checkout)
        assert _rows(checkout.id) == ours
        transaction.set_rollback(True)
    expected_return = (public_url or "http://testserver/").rstrip("/") + f"/pay/return/{checkout.id}"
    assert urls == ((expected_return, return_url) if return_url else ("", ""))


def test_the_statement_names_every_column_of_the_three_tables():
    """A column added to a model fails here until the insert writes it."""
    written = dict(re.findall(r"INSERT INTO (\w+) \(([^)]*)\)", _INSERT))
    for model in (PaymentEvent, PaymentOrder, PaymentOrderTransition):
        columns = {f.column for f in model._meta.concrete_fields if f.column != "id" or model is not
                   PaymentOrderTransition}
        assert set(re.split(r",\s*", written[model._meta.db_table].strip())) == columns, model.__name__


def _same(ours, drfs) -> bool:
    """The same members in the same order: the same response, byte for byte."""
    return json.dumps(ours) == json.dumps(drfs)


@pytest.mark.parametrize(("n", "return_url", "email", "public_url"), _SHAPES)
def test_the_answer_is_payment_event_outputs(n, return_url, email, public_url):
    client = ApiClientFactory()
    sellers = [SellerFactory(client=client) for _ in range(n)]
    with override_settings(PAYMENTS_PUBLIC_URL=public_url):
        checkout = _checkout(client, sellers, n, return_url, email)
    rendered = checkout_output(checkout)
    assert _same(rendered, PaymentEventOutput(checkout.payment_event()).data)
    stored = PaymentEvent.objects.get(pk=checkout.id)  # as GET /checkouts/{id} reads it: its orders as stored
    assert _same(rendered, PaymentEventOutput(stored).data)
    assert [o["id"] for o in rendered["orders"]] == [o.id for o in checkout.orders]


def _made(microsecond: int, tz=UTC, orders: int = 2, **values) -> NewCheckout:
    at = datetime(2026, 12, 7, 3, 4, 5, microsecond, tzinfo=tz)
    fields = dict(id="pe_1", client_id="cli_1", buyer_reference="r\u2028\"'\\", buyer_email="", payment_method="pm_x",
                  psp_payment_method="", idempotency_key="k", return_url="", psp_return_url="", created_at=at,
                  next_action_at=at + timedelta(seconds=30), actor="api_client:cli_1")
    fields.update(values)
    made = [NewOrder(f"ord_{i}", f"sel_{i}", 10**i, _CURRENCIES[i % 5], at + timedelta(microseconds=i),
                     at + timedelta(seconds=i), at) for i in range(orders)]
    return NewCheckout(orders=tuple(made), **fields)


@pytest.mark.parametrize("checkout", [
    _made(0), _made(999_999), _made(5, orders=1), _made(7, orders=50), _made(0, tz=timezone.get_fixed_timezone(120)),
    _made(1, return_url="https://x.example/a b", psp_return_url="https://pay.example/pay/return/pe_1",
          buyer_email="a@b.example"),
])
@pytest.mark.parametrize("current", ["UTC", "Europe/Paris", "America/St_Johns"])
def test_the_answer_is_payment_event_outputs_for_any_times_and_zones(checkout, current):
    """Times with and without microseconds, not in UTC, rendered in another current time zone."""
    with timezone.override(current):
        assert _same(checkout_output(checkout), PaymentEventOutput(checkout.payment_event()).data)


def test_payment_event_create_answers_the_saved_instances():
    client = ApiClientFactory()
    sellers = [SellerFactory(client=client) for _ in range(2)]
    event = payment_event_create(client=client, buyer_reference="b", buyer_email="", payment_method="pm_card_visa",
                                 orders=[OrderSpec(s.id, 500, "usd") for s in sellers], idempotency_key="k")
    stored = PaymentEvent.objects.get(pk=event.pk)
    assert not event._state.adding and event.created_at == stored.created_at and event.state == "processing"
    assert [(o.id, o.created_at, o.updated_at, o.next_action_at, o._state.adding) for o in event.order_list] == [
        (o.id, o.created_at, o.updated_at, o.next_action_at, False) for o in stored.orders.all()]
