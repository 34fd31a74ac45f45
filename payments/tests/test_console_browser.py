"""The operators' console in Debian's Chromium (issue 15): an operator finds an order by the buyer's email and by
its amount, opens its timeline, replays a dead-lettered order from its confirmation page (the real PSP sandbox
and Celery worker then settle it), and axe-core finds no serious violation on the dashboard, the orders list,
an order's timeline and the breaks list; no page scrolls sideways at 1440 px. Skipped without chromium."""
import re

import pytest
from django.contrib.admin.models import LogEntry

from conftest import wait_for
from payments.models import PaymentOrder, PaymentOrderState
from payments.tests.console_seed import OPERATOR, PASSWORD, console_seed
from payments.tests.test_hosted_page_browser import CHROMIUM, chromium, serious_violations  # noqa: F401 - fixture

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(CHROMIUM is None, reason="apt-get install chromium")]


@pytest.fixture
def seeded():
    return console_seed(orders=8)


@pytest.fixture
def desk(chromium, live_server, seeded):  # noqa: F811 - the fixture imported above
    """An operator logged in at a desktop's 1440×900."""
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", OPERATOR)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.base = live_server.url
    yield page
    context.close()


def _search(page, term):
    page.goto(f"{page.base}/admin/payments/paymentorder/")
    page.fill("#searchbar", term)
    page.press("#searchbar", "Enter")
    page.wait_for_load_state()
    return page.locator("#result_list tbody th a").all_inner_texts()


def _sideways(page) -> int:
    """How far the page or a table inside it scrolls sideways (0: it fits)."""
    return page.evaluate("Math.max(document.documentElement.scrollWidth - document.documentElement.clientWidth, "
                         "...[...document.querySelectorAll('.results, .scroll-x')].map(e => e.scrollWidth - "
                         "e.clientWidth))")


def test_an_operator_finds_an_order_by_email_and_by_amount_and_reads_its_timeline(desk, seeded):
    found = seeded["found"]
    assert _search(desk, "ann@example.com") == [found.pk]
    assert found.pk in _search(desk, "49.99")
    assert _sideways(desk) <= 0
    row = desk.locator("#result_list tbody tr", has_text=found.pk)
    assert "49.99 USD" in row.inner_text() and "Alpha Books" in row.inner_text()
    row.get_by_role("link", name="timeline").click()
    desk.wait_for_url(re.compile(rf".*/paymentorder/{found.pk}/timeline/$"))
    text = desk.locator("#content-main").inner_text()
    for shown in ("PSP call 1: succeeded in 184 ms", found.psp_idempotency_key, "Refund", "10.00 USD",
                  "Settlement line", "Break: amount_mismatch", "Webhook payment_intent.succeeded"):
        assert shown in text, shown
    assert _sideways(desk) <= 0


def test_an_operator_replays_a_dead_letter_from_its_confirmation_page(desk, seeded, celery_worker, sandbox):
    dead, done = seeded["dead"], seeded["found"]
    desk.goto(f"{desk.base}/admin/payments/paymentorder/?state__exact=dead_letter")
    desk.locator("#result_list tbody tr", has_text=dead.pk).locator("input.action-select").check()
    desk.select_option("select[name=action]", "replay_dead_letter")
    desk.click("button[name=index], .actions button[type=submit]")
    desk.wait_for_selector("table.confirm-rows")
    text = desk.locator("#content-main").inner_text()
    for shown in ("12,345.67 USD", "Bravo Tools & Hardware Supplies", "6 attempts failed; last error: PSP 503",
                  "asks the PSP first", "cannot charge a buyer twice", dead.psp_idempotency_key):
        assert shown in text, shown
    assert _sideways(desk) <= 0
    desk.fill("textarea[name=reason]", "PSP outage over (INC-42)")
    desk.click("input[type=submit][value=Confirm]")
    desk.wait_for_selector(".messagelist")
    assert dead.pk.lower() in desk.locator(".messagelist").inner_text().lower()

    def settled():
        dead.refresh_from_db()
        return dead.state == PaymentOrderState.SUCCEEDED

    wait_for(settled, timeout=60, message=f"{dead.pk} to succeed after the replay")
    assert PaymentOrder.objects.get(pk=done.pk).state == PaymentOrderState.SUCCEEDED
    entry = LogEntry.objects.get(object_id=dead.pk)
    assert entry.user.username == OPERATOR and "PSP outage over (INC-42)" in entry.change_message
    desk.goto(f"{desk.base}/admin/")
    assert dead.pk in desk.locator("#recent-actions-module").inner_text()  # "Recent actions"
    desk.goto(f"{desk.base}/admin/payments/paymentorder/{dead.pk}/timeline/")
    text = desk.locator("#content-main").inner_text()
    assert "PSP call 6: retryable error" in text and "dead_letter → " in text and "operator:olivia" in text


def test_axe_finds_no_serious_violation_on_the_main_pages(desk, seeded):
    for path in ("/admin/", "/admin/payments/paymentorder/",
                 f"/admin/payments/paymentorder/{seeded['found'].pk}/timeline/",
                 f"/admin/payments/paymentorder/{seeded['dead'].pk}/timeline/", "/admin/reconciliation/break/"):
        desk.goto(desk.base + path)
        found = serious_violations(desk)
        assert found == [], f"{path}: {found}"
        assert _sideways(desk) <= 0, path
