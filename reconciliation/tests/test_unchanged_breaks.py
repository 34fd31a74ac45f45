"""A reopened line whose inputs are unchanged is not decided again (``matching.unchanged``): its break reads as if
it had been; each input its decision reads decides it again, and the outcome changes."""
from __future__ import annotations

from datetime import timedelta

import pytest

from payments.models import PaymentOrder
from reconciliation.models import Break, LineDecision, SettlementMatch
from reconciliation.services import break_resolve, reconciliation_run, settlement_file_import

from .helpers import fee, order, row, stripe_report

pytestmark = pytest.mark.django_db


@pytest.fixture
def reopened(tmp_path, now):
    """A night whose run left a break of each class a reopened charge-like line can be (the top-up: an unknown
    record type): the next run reopens them."""
    before = now - timedelta(hours=2)
    objects = {"amount": order(amount=2000, psp_reference="pi_amount", completed_at=before),
               "ccy": order(amount=3000, psp_reference="pi_ccy", completed_at=before),
               "dup": order(amount=500, psp_reference="pi_dup", completed_at=before),
               "pending": order(amount=900, psp_reference="pi_pending", completed_at=before, state="pending")}
    settlement_file_import(path=stripe_report(tmp_path / "night1.csv", [
        row("charge", gross=1900, fee=fee(1900), pi="pi_amount", created=before),
        row("charge", gross=3000, fee=fee(3000), currency="eur", pi="pi_ccy", created=before, payout="po_eur"),
        row("charge", gross=1234, fee=fee(1234), pi="pi_nobody", created=before),
        row("charge", gross=500, fee=fee(500), pi="pi_dup", created=before),
        row("charge", gross=500, fee=fee(500), pi="pi_dup", created=before),
        row("charge", gross=900, fee=fee(900), pi="pi_pending", created=before),
        row("topup", gross=5000, created=before),
    ]), actor="test")
    first = reconciliation_run(day=now.date(), actor="test")
    return first, objects


def _breaks() -> list[tuple]:
    return sorted(Break.objects.values_list("key", "state", "resolution", "expected_amount", "actual_amount",
                                            "object_id", "description"))


def _matches() -> list[tuple]:
    return sorted(SettlementMatch.objects.values_list("line_id", "state", "kind", "object_id"))


def _decided_by(run) -> set[str]:
    """The reopened lines' breaks ``run`` decided again (their decision record rewritten)."""
    return {f"{d.break_class}:line:{d.line_id}" for d in LineDecision.objects.filter(run=run)}


def _stats(run) -> dict:
    return {"breaks": run.stats["breaks"], "lines": run.stats["lines"], "evaluated": run.lines_evaluated}


def _open(**filters) -> list[str]:
    return sorted(Break.objects.filter(state="open", line__isnull=False, **filters).values_list("break_class",
                                                                                                flat=True))


def test_unchanged_breaks_are_left_undecided_and_read_as_decided_again(reopened, now):
    first, _ = reopened
    line_breaks = Break.objects.filter(line__isnull=False)
    resolved = line_breaks.get(break_class="currency_mismatch")
    break_resolve(break_id=resolved.pk, resolution="psp_corrected", reason="PSP restated it", actor="operator:ann")
    assert _open() == ["amount_mismatch", "duplicate", "missing_in_books", "missing_in_books", "unknown_record_type"]
    assert LineDecision.objects.filter(run=first).count() == 6  # every line it left a break
    state = (_breaks(), _matches())

    skipping = reconciliation_run(day=now.date(), actor="test")
    assert _decided_by(skipping) == set()  # none decided again
    assert (_breaks(), _matches()) == state
    assert set(line_breaks.values_list("last_seen_run", flat=True)) == {skipping.pk}  # the resolved one too
    assert Break.objects.get(pk=resolved.pk).state == "resolved"

    LineDecision.objects.all().delete()  # as before migration 0017: every reopened line decided again
    deciding = reconciliation_run(day=now.date(), actor="test")
    assert len(_decided_by(deciding)) == 6
    assert (_breaks(), _matches()) == state
    assert set(line_breaks.values_list("last_seen_run", flat=True)) == {deciding.pk}
    assert _stats(skipping) == _stats(deciding)
    assert skipping.stats["lines"] == {"break": 6}


@pytest.mark.parametrize("change, cleared, now_open", [
    ("amount", "amount_mismatch", []),  # the order's amount corrected: the line matches
    ("currency", "currency_mismatch", []),
    ("late success", "missing_in_books", []),  # the pending order succeeded since
    ("failed", "amount_mismatch", ["missing_in_books"]),  # the order failed since
])
def test_a_changed_order_decides_its_line_again(reopened, now, change, cleared, now_open):
    first, objects = reopened
    name, values = {"amount": ("amount", {"amount": 1900}), "currency": ("ccy", {"currency": "eur"}),
                    "late success": ("pending", {"state": "succeeded"}),
                    "failed": ("amount", {"state": "failed"})}[change]
    PaymentOrder.objects.filter(pk=objects[name].pk).update(**values)
    line_id = Break.objects.get(object_id=objects[name].pk, break_class=cleared).line_id
    before = _open()

    again = reconciliation_run(day=now.date(), actor="test")
    assert _decided_by(again) == {f"{klass}:line:{line_id}" for klass in now_open}
    assert Break.objects.get(key=f"{cleared}:line:{line_id}").resolution == "cleared"
    assert _open(line_id=line_id) == now_open
    before.remove(cleared)
    assert _open() == sorted([*before, *now_open])
    matched = not now_open
    assert SettlementMatch.objects.get(line_id=line_id).state == ("matched" if matched else "break")
    assert again.stats["lines"] == {"break": 6 - matched, **({"matched": 1} if matched else {})}


def test_an_order_appearing_with_the_reference_decides_its_line_again(reopened, now):
    order(amount=1234, psp_reference="pi_nobody", completed_at=now - timedelta(hours=2))
    line_id = Break.objects.get(psp_reference="pi_nobody").line_id

    again = reconciliation_run(day=now.date(), actor="test")
    assert SettlementMatch.objects.get(line_id=line_id).state == "matched"
    assert Break.objects.get(line_id=line_id).resolution == "cleared"
    assert _decided_by(again) == set()  # matched: no decision record left
    assert not LineDecision.objects.filter(line_id=line_id).exists()


def test_a_twin_in_a_later_file_decides_the_reopened_line_again(reopened, tmp_path, now):
    first, objects = reopened
    line_id = Break.objects.get(break_class="amount_mismatch").line_id
    settlement_file_import(path=stripe_report(tmp_path / "night2.csv", [  # the order settled again, in full
        row("charge", gross=2000, fee=fee(2000), pi="pi_amount", created=now - timedelta(hours=1)),
    ]), actor="test")

    again = reconciliation_run(day=now.date(), actor="test")
    assert f"amount_mismatch:line:{line_id}" in _decided_by(again)
    # The first line settling the order counts: the reopened one; the later one is the duplicate.
    twin = Break.objects.get(run=again)
    assert (twin.break_class, twin.object_id, twin.state) == ("duplicate", objects["amount"].pk, "open")
    assert again.stats["breaks"]["duplicate"]["new"] == 1


def test_an_operator_resolution_changes_no_decision(reopened, now):
    """A break's state is not read by a charge line's rules (nor is a refund: a row of its own, not the order's):
    the line is left undecided, its resolved break seen again as it would be."""
    first, objects = reopened
    brk = Break.objects.get(break_class="amount_mismatch")
    break_resolve(break_id=brk.pk, resolution="no_action", reason="known", actor="operator:ann")
    state = (_breaks(), _matches())

    again = reconciliation_run(day=now.date(), actor="test")
    assert _decided_by(again) == set()
    assert (_breaks(), _matches()) == state
    assert Break.objects.get(pk=brk.pk).last_seen_run_id == again.pk


def test_an_order_appearing_with_the_merchant_reference_decides_its_line_again(tmp_path, now):
    before = now - timedelta(hours=2)
    settlement_file_import(path=stripe_report(tmp_path / "night1.csv", [
        row("charge", gross=600, fee=fee(600), pi="pi_unknown_to_us", order_id="ord_later", created=before),
    ]), actor="test")
    reconciliation_run(day=now.date(), actor="test")
    brk = Break.objects.get()
    assert (brk.break_class, LineDecision.objects.get().merchant_reference) == ("missing_in_books", "ord_later")
    later = order(amount=600, psp_reference="pi_ours", completed_at=before)
    PaymentOrder.objects.filter(pk=later.pk).update(id="ord_later")  # our order, the id the PSP's line names

    again = reconciliation_run(day=now.date(), actor="test")
    assert Break.objects.get(pk=brk.pk).resolution == "cleared"
    assert SettlementMatch.objects.get(line_id=brk.line_id).object_id == "ord_later"
    assert again.stats["lines"] == {"matched": 1}
