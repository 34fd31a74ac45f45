"""A checkout's idempotency claim and its rows are one statement, committed on its own (``core.services.ClaimedRows``,
``payments.services.checkout_write.CheckoutRows``): no BEGIN, no COMMIT. Every idempotency rule still holds, because
that statement writes the rows if and only if it claims the key, and claims nothing when anything else is the case
(the key exists, a twin holds its advisory lock, a seller is refused): then the transaction's path runs as before.
These tests run against committed data (``transaction=True``): twins race on real connections, and the publish is
checked to see the rows from another connection."""
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import wait_for
from core.models import IdempotencyRecord
from core.services import api_client_create, request_fingerprint
from payments.models import PaymentEvent, PaymentOrder, PaymentOrderTransition, Seller
from payments.services import enqueue
from payments.tests.factories import SellerFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop():
    client, key = api_client_create(name="shop")
    return client, key, [SellerFactory(client=client).id for _ in range(2)]


@pytest.fixture
def published(monkeypatch):
    """The events whose execution was enqueued, each with whether its rows were committed when it was: read from
    another connection, in another thread, as the worker would read them."""
    calls = []

    def visible_elsewhere(event_id: str) -> bool:
        def read() -> bool:
            try:
                return PaymentEvent.objects.filter(pk=event_id).exists()
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(read).result(10)

    def publish(task, *, payment_event_id: str, **_) -> None:
        calls.append((payment_event_id, visible_elsewhere(payment_event_id)))

    monkeypatch.setattr(enqueue, "task_publish", publish)
    return calls


def _body(sellers, amount=1000) -> str:
    return json.dumps({"buyer": {"reference": "b"}, "payment_method": "pm_card_visa",
                       "orders": [{"seller": s, "amount": amount, "currency": "usd"} for s in sellers]})


def _post(api_key: str, body: str, key: str = "k"):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    try:
        return api.generic("POST", "/api/v1/checkouts", body, content_type="application/json",
                           HTTP_IDEMPOTENCY_KEY=key)
    finally:
        connection.close()  # in a thread: its own connection


def _rows() -> tuple[int, int, int, int]:
    return (IdempotencyRecord.objects.count(), PaymentEvent.objects.count(), PaymentOrder.objects.count(),
            PaymentOrderTransition.objects.count())


def test_one_statement_then_published_once_committed_and_replayed(shop, published):
    client, api_key, sellers = shop
    first = _post(api_key, _body(sellers))
    assert first.status_code == 201, first.content
    event_id = first.json()["id"]
    assert published == [(event_id, True)]  # once, after the rows were committed
    assert _rows() == (1, 1, 2, 2)
    record = IdempotencyRecord.objects.get()
    assert (record.status, record.response_status, record.response_body) == ("completed", 201, first.json())
    again = _post(api_key, _body(sellers))
    assert (again.status_code, again.json(), again["Idempotent-Replayed"]) == (201, first.json(), "true")
    assert _post(api_key, _body(sellers, amount=999)).status_code == 422  # another body, the same key
    assert _rows() == (1, 1, 2, 2) and len(published) == 1


def test_a_replay_wins_over_a_seller_refused_since(shop, published):
    client, api_key, sellers = shop
    first = _post(api_key, _body(sellers))
    Seller.objects.filter(pk=sellers[1]).update(status=Seller.Status.SUSPENDED)
    again = _post(api_key, _body(sellers))
    assert (again.status_code, again.json()) == (201, first.json())
    refused = _post(api_key, _body(sellers), key="k-2")  # a new key: refused, released
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "seller_not_onboarded"
    assert not IdempotencyRecord.objects.filter(key="k-2").exists()
    assert _rows() == (1, 1, 2, 2) and len(published) == 1


def test_an_expired_key_is_replaced_and_an_abandoned_one_taken_over(shop, published, settings):
    client, api_key, sellers = shop
    body = _body(sellers)
    fingerprint = request_fingerprint(method="POST", path="/api/v1/checkouts", body=body.encode())
    old = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS + 1)
    expired = IdempotencyRecord.objects.create(
        client=client, key="expired", request_method="POST", request_path="/api/v1/checkouts",
        request_fingerprint="another", status="completed", response_status=201, response_body={"old": 1},
        locked_at=old)
    IdempotencyRecord.objects.filter(pk=expired.pk).update(created_at=old)  # auto_now_add on create
    assert _post(api_key, body, key="expired").status_code == 201
    abandoned = IdempotencyRecord.objects.create(
        client=client, key="abandoned", request_method="POST", request_path="/api/v1/checkouts",
        request_fingerprint=fingerprint, locked_at=timezone.now())
    assert _post(api_key, body, key="abandoned").status_code == 409  # recent: in use
    IdempotencyRecord.objects.filter(pk=abandoned.pk).update(locked_at=timezone.now() - timedelta(minutes=5))
    taken = _post(api_key, body, key="abandoned")
    assert taken.status_code == 201
    abandoned.refresh_from_db()
    assert (abandoned.status, abandoned.response_body) == ("completed", taken.json())
    assert [visible for _, visible in published] == [True, True]
    assert PaymentEvent.objects.count() == 2


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE '%%claim AS (%%'")
        return cur.fetchone()[0] > 0


def test_a_twin_is_409_while_the_first_statement_runs(shop, published):
    """The first checkout's statement is held at its end (its orders' foreign-key check waits on a seller locked
    by another transaction) with the key claimed, uncommitted, and its advisory lock held."""
    client, api_key, sellers = shop
    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cur:
            holder.set_autocommit(False)
            cur.execute("SELECT 1 FROM payments_seller WHERE id = %s FOR UPDATE", [sellers[0]])
            with ThreadPoolExecutor(max_workers=1) as pool:
                first = pool.submit(_post, api_key, _body(sellers))
                wait_for(_waiting_on_a_lock, timeout=10, message="the first checkout's statement")
                during_same, during_other = _post(api_key, _body(sellers)), _post(api_key, _body(sellers, 999))
                assert _rows()[0] == 0  # nothing committed yet
                holder.commit()
                first = first.result(10)
    finally:
        holder.close()
    assert (during_same.status_code, during_other.status_code) == (409, 409)
    assert first.status_code == 201
    assert _post(api_key, _body(sellers)).json() == first.json()
    assert _rows() == (1, 1, 2, 2) and len(published) == 1


def test_twins_at_the_same_moment_write_once(shop, published):
    client, api_key, sellers = shop
    start = threading.Barrier(6)

    def twin():
        start.wait(10)
        return _post(api_key, _body(sellers))

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = [f.result(30) for f in [pool.submit(twin) for _ in range(6)]]
    created = [a for a in answers if a.status_code == 201 and not a.has_header("Idempotent-Replayed")]
    assert len(created) == 1
    assert all(a.status_code == 409 or a.json() == created[0].json() for a in answers)
    time.sleep(0.1)
    assert _rows() == (1, 1, 2, 2) and published == [(created[0].json()["id"], True)]
