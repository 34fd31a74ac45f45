"""Admin actions that explain themselves (issue 15): a confirmation page per action that lists each selected
object with its amount, seller, last error and attempts, says what the action will and will not do, lists what
it excludes and why (never narrowing a selection silently), asks a reason, and writes Django's admin log; and a
403 page that says what happened. Logged in as operators, against the real PostgreSQL and the PSP sandbox."""
import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client

from payments.models import PaymentOrderState, WebhookEvent
from payments.tests.factories import PaymentOrderFactory, SellerFactory

pytestmark = pytest.mark.django_db

ORDERS = "/admin/payments/paymentorder/"
WEBHOOKS = "/admin/payments/webhookevent/"


def _login(username, group=None):
    call_command("create_operator_groups")
    user = User.objects.create_user(username, password="x" * 16, is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator():
    return _login("pat", "Payment operators")


@pytest.fixture
def orders():
    """Two dead-lettered orders (12,345.67 USD to Alpha Books after 5 attempts; 25,000 JPY to Bravo Tools) and
    one succeeded order, which a replay must list as excluded."""
    alpha, bravo = SellerFactory(name="Alpha Books"), SellerFactory(name="Bravo Tools")
    dead = PaymentOrderFactory(seller=alpha, amount=1234567, currency="usd", state=PaymentOrderState.DEAD_LETTER,
                               attempts=5, failure_code="retries_exhausted",
                               failure_message="5 attempts failed; last error: PSP 503")
    dead_jpy = PaymentOrderFactory(seller=bravo, amount=25000, currency="jpy", state=PaymentOrderState.DEAD_LETTER,
                                   attempts=1, failure_code="amount_mismatch", failure_message="PSP captured 1")
    done = PaymentOrderFactory(seller=alpha, amount=999, currency="usd", state=PaymentOrderState.SUCCEEDED)
    return dead, dead_jpy, done


def _ask(client, url, action, ids, **data):
    return client.post(url, {"action": action, "_selected_action": ids, **data})


def test_the_replay_confirmation_tells_each_orders_story_and_what_replay_does(operator, orders):
    dead, dead_jpy, done = orders
    page = _ask(operator, ORDERS, "replay_dead_letter", [dead.pk, dead_jpy.pk, done.pk])
    assert page.status_code == 200
    html = page.content.decode()
    for expected in ("12,345.67 USD", "25,000 JPY", "Alpha Books", "Bravo Tools",
                     "retries_exhausted: 5 attempts failed; last error: PSP 503", "amount_mismatch",
                     dead.psp_idempotency_key):
        assert expected in html
    assert "asks the PSP first" in html and "cannot charge a buyer twice" in html.lower()
    assert "same idempotency key" in html
    # Not narrowed silently: the succeeded order is listed as excluded, with why.
    assert "You selected 3; this applies to the 2 below (1 excluded" in html
    assert f"{done.pk}" in html and "only dead-lettered orders are replayed" in html
    assert html.count('name="_selected_action"') == 2  # confirming acts on the two listed, not the excluded one
    assert 'name="reason"' in html
    dead.refresh_from_db()
    assert dead.state == PaymentOrderState.DEAD_LETTER  # asking changed nothing


def test_a_selection_with_nothing_to_replay_says_so(operator, orders):
    _, _, done = orders
    html = _ask(operator, ORDERS, "replay_dead_letter", [done.pk]).content.decode()
    assert "None of the 1 selected can be acted on" in html and 'name="confirmed"' not in html


def test_a_replay_needs_a_reason_then_is_applied_and_written_to_the_admin_log(operator, orders, sandbox):
    dead, _, done = orders
    refused = _ask(operator, ORDERS, "replay_dead_letter", [dead.pk], confirmed="1", reason="")
    assert refused.status_code == 200 and b"This field is required" in refused.content
    assert not LogEntry.objects.exists()
    done_response = _ask(operator, ORDERS, "replay_dead_letter", [dead.pk, done.pk], confirmed="1",
                         reason="PSP outage over (INC-42)")
    assert done_response.status_code == 302
    dead.refresh_from_db()
    assert dead.state != PaymentOrderState.DEAD_LETTER
    replay = dead.transitions.get(from_state="dead_letter")
    assert (replay.actor, replay.reason) == ("operator:pat", "PSP outage over (INC-42)")
    entry = LogEntry.objects.get()
    assert entry.object_id == dead.pk and entry.user.username == "pat" and entry.is_change()
    assert "Replay dead-lettered payment orders" in entry.change_message
    assert "Reason: PSP outage over (INC-42)" in entry.change_message
    # "Recent actions" on the dashboard shows it.
    assert f"{dead}".encode() in operator.get("/admin/").content


@pytest.fixture
def failed_webhook():
    return WebhookEvent.objects.create(id="evt_failed", type="customer.created", status=WebhookEvent.Status.FAILED,
                                       payload={"id": "evt_failed", "type": "customer.created",
                                                "data": {"object": {"id": "cus_1", "object": "customer"}}},
                                       object_id="cus_1", attempts=1, last_error="boom: the database was away")


def test_rerunning_a_webhook_asks_first_with_a_reason_and_is_logged(operator, failed_webhook):
    processed = WebhookEvent.objects.create(id="evt_done", type="charge.succeeded", status="processed",
                                            payload={}, attempts=1)
    page = _ask(operator, WEBHOOKS, "reprocess", ["evt_failed", "evt_done"])
    html = page.content.decode()
    assert page.status_code == 200 and "boom: the database was away" in html and "customer.created" in html
    assert "does not call the PSP" in html and "already processed" in html
    failed_webhook.refresh_from_db()
    assert failed_webhook.attempts == 1  # nothing ran yet
    assert _ask(operator, WEBHOOKS, "reprocess", ["evt_failed"], confirmed="1", reason="").status_code == 200
    failed_webhook.refresh_from_db()
    assert failed_webhook.attempts == 1  # no reason, no run
    assert _ask(operator, WEBHOOKS, "reprocess", ["evt_failed", "evt_done"], confirmed="1",
                reason="database back").status_code == 302
    failed_webhook.refresh_from_db()
    processed.refresh_from_db()
    assert failed_webhook.attempts == 2 and processed.attempts == 1
    entry = LogEntry.objects.get()
    assert entry.object_id == "evt_failed" and "Reason: database back" in entry.change_message


def test_an_action_without_its_permission_is_neither_offered_nor_run(failed_webhook):
    finance = _login("fin", "Finance operators")
    assert b'value="reprocess"' not in finance.get(WEBHOOKS).content
    _ask(finance, WEBHOOKS, "reprocess", ["evt_failed"], confirmed="1", reason="x")
    failed_webhook.refresh_from_db()
    assert failed_webhook.attempts == 1 and not LogEntry.objects.exists()


def test_a_refused_page_says_what_happened_and_what_to_do(orders):
    nobody = _login("nobody")  # staff, in no group
    page = nobody.get(ORDERS)
    assert page.status_code == 403
    html = page.content.decode()
    assert "You are not allowed to do this" in html and "nobody" in html and "Payment operators" in html
    assert "Nothing was changed" in html and 'href="/admin/"' in html
