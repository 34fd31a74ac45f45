"""``missing_in_settlement`` run after run: the orders new to the window (since what earlier runs checked) and the
orders with a break are looked at; a line that settles a break's order at last clears it, else the break is seen
again while its order is in the window."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings

from reconciliation.models import Break, BreakResolution
from reconciliation.services import reconciliation_run, settlement_file_import
from reconciliation.services.breaks import break_resolve

from .helpers import fee, order, row, stripe_report

pytestmark = pytest.mark.django_db


def missing() -> list[tuple[str, str, int, int]]:
    """(order, state, first run, last run) of each ``missing_in_settlement`` break."""
    return sorted(Break.objects.filter(break_class="missing_in_settlement")
                  .values_list("object_id", "state", "run_id", "last_seen_run_id"))


def test_no_previous_run_checks_the_whole_lookback(now):
    start = now.replace(hour=0, minute=0, second=0)
    old = order(amount=800, psp_reference="pi_old", completed_at=start - timedelta(days=20))
    too_old = order(amount=900, psp_reference="pi_too_old", completed_at=start - timedelta(days=40))
    first = reconciliation_run(day=now.date(), actor="test")
    assert missing() == [(old.id, "open", first.pk, first.pk)]
    assert too_old.id not in [m[0] for m in missing()]


def test_an_order_whose_cut_off_passes_between_two_runs(now):
    """Checked by the run its cut-off passed in, then only seen again by the next (a break once, not twice)."""
    start = now.replace(hour=0, minute=0, second=0)
    early = order(amount=800, psp_reference="pi_early", completed_at=start - timedelta(days=2, hours=1))
    later = order(amount=900, psp_reference="pi_later", completed_at=start - timedelta(hours=12))
    first = reconciliation_run(day=now.date(), actor="test")  # the cut-off: the start of yesterday
    assert missing() == [(early.id, "open", first.pk, first.pk)]
    second = reconciliation_run(day=now.date() + timedelta(days=1), actor="test")
    assert missing() == sorted([(early.id, "open", first.pk, second.pk), (later.id, "open", second.pk, second.pk)])
    third = reconciliation_run(day=now.date() + timedelta(days=1), actor="test")  # the same day again
    assert missing() == sorted([(early.id, "open", first.pk, third.pk), (later.id, "open", second.pk, third.pk)])


def test_a_late_line_clears_the_break_once_and_the_others_are_seen_again(tmp_path, now):
    start = now.replace(hour=0, minute=0, second=0)
    completed = start - timedelta(days=3)
    late = order(amount=800, psp_reference="pi_late", completed_at=completed)
    lost = order(amount=900, psp_reference="pi_lost", completed_at=completed)
    first = reconciliation_run(day=now.date(), actor="test")
    assert missing() == sorted([(late.id, "open", first.pk, first.pk), (lost.id, "open", first.pk, first.pk)])
    settlement_file_import(path=stripe_report(tmp_path / "late.csv", [
        row("charge", gross=800, fee=fee(800), pi="pi_late", created=completed),
        row("payout", gross=-(800 - fee(800)), created=now, source="po_late"),
    ]), actor="test")
    second = reconciliation_run(day=now.date(), actor="test")
    assert missing() == sorted([(late.id, "auto_resolved", first.pk, second.pk),
                                (lost.id, "open", first.pk, second.pk)])
    cleared = Break.objects.get(break_class="missing_in_settlement", object_id=late.id)
    assert cleared.resolution == "settled_later" and cleared.reason.startswith("settled by line ")
    assert list(BreakResolution.objects.filter(brk=cleared).values_list("from_state", "to_state")) == [
        ("open", "auto_resolved")]
    third = reconciliation_run(day=now.date(), actor="test")  # settled: left as it is, no second audit row
    assert missing() == sorted([(late.id, "auto_resolved", first.pk, second.pk),
                                (lost.id, "open", first.pk, third.pk)])
    assert BreakResolution.objects.filter(brk=cleared).count() == 1


def test_a_resolved_break_still_unsettled_is_seen_again_and_stays_resolved(now):
    start = now.replace(hour=0, minute=0, second=0)
    lost = order(amount=900, psp_reference="pi_lost", completed_at=start - timedelta(days=3))
    first = reconciliation_run(day=now.date(), actor="test")
    brk = Break.objects.get(object_id=lost.id)
    break_resolve(break_id=brk.pk, resolution="no_action", reason="known", actor="operator:alice")
    second = reconciliation_run(day=now.date(), actor="test")
    assert missing() == [(lost.id, "resolved", first.pk, second.pk)]
    assert BreakResolution.objects.filter(brk=brk).count() == 1


def test_an_open_break_out_of_the_window_is_not_seen_again(now):
    start = now.replace(hour=0, minute=0, second=0)
    lost = order(amount=900, psp_reference="pi_lost", completed_at=start - timedelta(days=3))
    first = reconciliation_run(day=now.date(), actor="test")
    with override_settings(RECONCILIATION_MISSING_LOOKBACK_DAYS=2):
        reconciliation_run(day=now.date(), actor="test")
    assert missing() == [(lost.id, "open", first.pk, first.pk)]


def test_a_wider_window_checks_the_orders_it_adds(now):
    """A run whose window begins earlier than every earlier run's is not bounded by what they checked."""
    start = now.replace(hour=0, minute=0, second=0)
    recent = order(amount=800, psp_reference="pi_recent", completed_at=start - timedelta(days=3))
    older = order(amount=900, psp_reference="pi_older", completed_at=start - timedelta(days=10))
    with override_settings(RECONCILIATION_MISSING_LOOKBACK_DAYS=5):
        first = reconciliation_run(day=now.date(), actor="test")
    assert missing() == [(recent.id, "open", first.pk, first.pk)]
    second = reconciliation_run(day=now.date(), actor="test")  # the default lookback, 30 days
    assert missing() == sorted([(recent.id, "open", first.pk, second.pk), (older.id, "open", second.pk, second.pk)])


@override_settings(RECONCILIATION_MISSING_CUTOFF_HOURS=0)
def test_an_order_completed_just_before_a_run_but_committed_after_it_is_checked_by_the_next(now):
    """``completed_at`` is the application's clock when the order succeeded, its commit comes later: a run whose
    cut-off is past its own start must not count an order it could not see yet (completed a moment before the run
    started) as checked."""
    first = reconciliation_run(day=now.date(), actor="test")  # the cut-off (the end of today) is past its start
    late = order(amount=900, psp_reference="pi_late_commit", completed_at=first.started_at - timedelta(seconds=1))
    second = reconciliation_run(day=now.date(), actor="test")
    assert missing() == [(late.id, "open", second.pk, second.pk)]


def _break_pages() -> dict[int, int]:
    """The heap page each ``missing_in_settlement`` break's current version is on, by break id."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT id, (ctid::text::point)[0]::int FROM reconciliation_break"
                       " WHERE break_class = 'missing_in_settlement'")
        return dict(cursor.fetchall())


def test_a_break_seen_again_is_rewritten_on_its_own_page(now):
    """Every run rewrites the breaks it sees again (``last_seen_run``): each page keeps room for a new version of
    each of its rows (fillfactor 50, migration 0014), so the rewrite stays on its page (HOT: no entry in the table's
    other indexes). At fillfactor 80 most of them moved to another page."""
    completed = now.replace(hour=0, minute=0, second=0) - timedelta(days=3)
    for n in range(60):
        order(amount=800 + n, psp_reference=f"pi_page_{n}", completed_at=completed)
    first = reconciliation_run(day=now.date(), actor="test")
    pages = _break_pages()
    assert len(pages) == 60 and len(set(pages.values())) > 1  # several pages of breaks
    second = reconciliation_run(day=now.date(), actor="test")
    assert {state_runs[1:] for state_runs in missing()} == {("open", first.pk, second.pk)}
    assert _break_pages() == pages


def test_an_open_break_out_of_the_window_is_cleared_by_a_late_line(tmp_path, now):
    """The clears probe the open breaks the run did not see again: out of the window, one still clears."""
    start = now.replace(hour=0, minute=0, second=0)
    completed = start - timedelta(days=3)
    late = order(amount=800, psp_reference="pi_late", completed_at=completed)
    lost = order(amount=900, psp_reference="pi_lost", completed_at=completed)
    first = reconciliation_run(day=now.date(), actor="test")
    settlement_file_import(path=stripe_report(tmp_path / "late.csv", [
        row("charge", gross=800, fee=fee(800), pi="pi_late", created=completed),
        row("payout", gross=-(800 - fee(800)), created=now, source="po_late"),
    ]), actor="test")
    with override_settings(RECONCILIATION_MISSING_LOOKBACK_DAYS=2):  # both orders now out of the window
        second = reconciliation_run(day=now.date(), actor="test")
    assert missing() == sorted([(late.id, "auto_resolved", first.pk, second.pk), (lost.id, "open", first.pk, first.pk)])
    cleared = Break.objects.get(break_class="missing_in_settlement", object_id=late.id)
    assert list(BreakResolution.objects.filter(brk=cleared).values_list("from_state", "to_state")) == [
        ("open", "auto_resolved")]
