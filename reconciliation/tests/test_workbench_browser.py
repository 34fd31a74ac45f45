"""The break workbench in a real headless Chromium (Debian's, driven by Playwright) at 1440×900: one operator
opens a break and proposes the write-off, a second approves it, and the ledger shows the posting. The breaks
list and a break's page fit the width without sideways scrolling, and axe-core finds no serious violation
there. ``SCREENSHOTS_DIR=docs/screenshots`` also saves screenshots of both pages."""
import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from ledger import selectors as ledger_selectors
from payments.tests.test_hosted_page_browser import CHROMIUM, chromium  # noqa: F401 - the shared browser
from reconciliation.models import Break, Correction

from .test_corrections import amount_break  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(CHROMIUM is None, reason="apt-get install chromium")]

WIDTH, HEIGHT = 1440, 900


def operator_in(browser, live_server, username: str, group: str, *, width: int = WIDTH, height: int = HEIGHT):
    """A browser context logged in through the admin's login page as a member of ``group``."""
    call_command("create_operator_groups", stdout=open(os.devnull, "w"))  # noqa: SIM115 - closed with the process
    user = User.objects.create_user(username, password=f"pw-{username}-console-1", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"pw-{username}-console-1")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    return context, page


def sideways_scroll(page) -> int:
    """How far the page, or a list's table inside its own scrolling box (Django's ``.results``), scrolls sideways."""
    return page.evaluate("""() => Math.max(
        document.documentElement.scrollWidth - document.documentElement.clientWidth,
        ...[...document.querySelectorAll('.results, .recon-workbench, #content-main')].map(
            box => box.scrollWidth - box.clientWidth))""")


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical violations of the page (``axe-playwright-python`` bundles axe-core)."""
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright",
                                     reason="pip install axe-playwright-python (requirements-dev)")
    results = axe_module.Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]


def shot(page, name: str) -> None:
    directory = os.environ.get("SCREENSHOTS_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{directory}/{name}.png", full_page=True)


def test_one_operator_proposes_the_write_off_another_approves_and_the_ledger_posts_it(
        chromium, live_server, amount_break):  # noqa: F811
    alice_context, alice = operator_in(chromium, live_server, "alice", "Finance operators")
    bob_context, bob = operator_in(chromium, live_server, "bob", "Finance approvers")
    try:
        alice.goto(f"{live_server.url}/admin/reconciliation/break/")
        row = alice.locator("#result_list tbody tr", has_text="amount mismatch")
        assert "-1.00 USD" in row.inner_text()
        assert sideways_scroll(alice) <= 0, "the breaks list scrolls sideways at 1440 px"
        assert serious_violations(alice) == []
        shot(alice, "breaks-list-1440")

        row.locator("a", has_text="amount mismatch").click()
        alice.wait_for_selector(".recon-workbench")
        assert "Candidate payment orders" in alice.content()
        assert sideways_scroll(alice) <= 0, "a break's page scrolls sideways at 1440 px"
        assert serious_violations(alice) == []
        shot(alice, "break-workbench-1440")

        alice.click("text=Propose a correction")
        assert "Post anything now" in alice.content()
        assert sideways_scroll(alice) <= 0 and serious_violations(alice) == []
        alice.select_option("#id_adjustment", "write_off_psp_receivable")
        alice.fill("#id_reason", "The PSP short-paid 1.00 USD on pi_short")
        alice.click("input[type=submit][value=Propose]")
        alice.wait_for_selector(".messagelist")
        assert "awaiting approval" in alice.inner_text(".messagelist")
        correction = Correction.objects.get()
        key = f"correction:{correction.pk}"
        assert ledger_selectors.postings_count_by_key(keys=[key]) == {}

        bob.goto(f"{live_server.url}/admin/reconciliation/break/{amount_break.pk}/change/")
        bob.click(f"text=Approve and post correction #{correction.pk}")
        assert "expenses:psp_fees 1.00 USD" in bob.content()
        assert sideways_scroll(bob) <= 0 and serious_violations(bob) == []
        bob.fill("#id_reason", "Matches the PSP's report")
        bob.click("input[type=submit][value='Approve and post']")
        bob.wait_for_selector(".messagelist")
        assert "approved and posted" in bob.inner_text(".messagelist")
        assert Break.objects.get(pk=amount_break.pk).resolution == "written_off"

        for path in ("/admin/reconciliation/correction/?state=all", "/admin/reconciliation/reconciliationrun/",
                     f"/admin/reconciliation/reconciliationrun/{amount_break.run_id}/change/",
                     "/admin/reconciliation/settlementfile/", "/admin/reconciliation/settlementline/",
                     f"/admin/reconciliation/settlementfile/{amount_break.line.file_id}/change/"):
            bob.goto(live_server.url + path)
            assert sideways_scroll(bob) <= 0, f"{path} scrolls sideways at 1440 px"
            assert serious_violations(bob) == [], path
        bob.goto(f"{live_server.url}/admin/ledger/ledgertransaction/?q={key}")  # the posting, found by its key
        posted = bob.inner_text("#result_list")
        assert f"Correction #{correction.pk} of break #{amount_break.pk}" in posted and "1.00 USD" in posted
        assert ledger_selectors.postings_count_by_key(keys=[key]) == {key: 1}
    finally:
        alice_context.close()
        bob_context.close()


def test_a_break_s_page_on_a_phone_does_not_scroll_sideways(chromium, live_server, amount_break):  # noqa: F811
    context, page = operator_in(chromium, live_server, "alice", "Finance operators", width=390, height=844)
    try:
        page.goto(f"{live_server.url}/admin/reconciliation/break/{amount_break.pk}/change/")
        page.wait_for_selector(".recon-workbench")
        assert sideways_scroll(page) <= 0, "a break's page scrolls sideways at 390 px"
        shot(page, "break-workbench-390")
        page.click("text=Propose a correction")
        shot(page, "break-propose-390")
        assert sideways_scroll(page) <= 0, "the confirmation page scrolls sideways at 390 px"
    finally:
        context.close()
