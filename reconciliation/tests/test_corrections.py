"""Corrections under maker-checker, against real captures, a real reconciliation and the real ledger."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from ledger import accounts
from ledger import selectors as ledger_selectors
from ledger.models import LedgerTransaction
from payments.audit import money_audit
from payments.models import PaymentOrderState
from payments.psp.base import PaymentResult, PaymentStatus
from payments.services import payment_order_apply_result
from payments.tests.factories import PaymentOrderFactory
from reconciliation.exceptions import (
    BreakResolutionError,
    CorrectionConflict,
    CorrectionInvalid,
    SelfApprovalRefused,
)
from reconciliation.models import Break, Correction
from reconciliation.services import (
    break_resolve,
    correction_approve,
    correction_propose,
    correction_reject,
    reconciliation_run,
    settlement_file_import,
)

from .helpers import fee, row, stripe_report

pytestmark = pytest.mark.django_db

ALICE, BOB = "operator:alice", "operator:bob"


def captured(*, amount: int, psp_reference: str, currency: str = "usd"):
    """An order captured through payments' own service: its posting and the seller's wallet credit."""
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING, amount=amount, currency=currency,
                                psp_reference=psp_reference)
    payment_order_apply_result(payment_order_id=order.id, actor="test", result=PaymentResult(
        status=PaymentStatus.SUCCEEDED, psp_reference=psp_reference, amount=amount, currency=currency))
    return order


def settled(tmp_path, rows) -> None:
    settlement_file_import(path=stripe_report(tmp_path / f"report-{len(list(tmp_path.iterdir()))}.csv", rows),
                           actor="test")
    reconciliation_run(day=timezone.now().date(), actor="test")


@pytest.fixture
def amount_break(tmp_path) -> Break:
    """Captured 20.00, the PSP settled 19.00: an ``amount_mismatch`` of -1.00 USD."""
    captured(amount=2000, psp_reference="pi_short")
    settled(tmp_path, [row("charge", gross=1900, fee=fee(1900), pi="pi_short",
                           created=timezone.now() - timedelta(hours=1))])
    return Break.objects.get(break_class="amount_mismatch")


def transactions() -> int:
    return LedgerTransaction.objects.count()


def receivable(currency: str = "usd") -> int:
    return ledger_selectors.account_balance(code=accounts.PSP_RECEIVABLE, currency=currency)


def posted(correction: Correction) -> dict[str, int]:
    return ledger_selectors.postings_count_by_key(keys=[f"correction:{correction.pk}"])


def test_a_proposal_posts_nothing_and_is_audited(amount_break):
    before = transactions()
    correction = correction_propose(break_id=amount_break.pk, adjustment="write_off_psp_receivable",
                                    reason="the PSP short-paid; not worth a dispute", actor=ALICE)
    assert transactions() == before and posted(correction) == {}
    assert (correction.state, correction.amount, correction.currency) == ("proposed", 100, "usd")
    assert correction.entries == [[accounts.PSP_FEES, "usd", 100], [accounts.PSP_RECEIVABLE, "usd", -100]]
    assert list(correction.transitions.values_list("from_state", "to_state", "actor", "reason")) == [
        ("", "proposed", ALICE, "the PSP short-paid; not worth a dispute")]
    amount_break.refresh_from_db()
    assert amount_break.state == "open"
    with pytest.raises(CorrectionConflict):  # one proposal per break at a time
        correction_propose(break_id=amount_break.pk, adjustment="write_off_psp_receivable", reason="again",
                           actor=BOB)


def test_the_proposer_cannot_approve_their_own(amount_break):
    correction = correction_propose(break_id=amount_break.pk, adjustment="write_off_psp_receivable",
                                    reason="short-paid", actor=ALICE)
    before = transactions()
    with pytest.raises(SelfApprovalRefused):
        correction_approve(correction_id=correction.pk, reason="looks right to me", actor=ALICE)
    correction.refresh_from_db()
    assert correction.state == "proposed" and correction.posting_key is None
    assert transactions() == before and correction.transitions.count() == 1
    assert Break.objects.get(pk=amount_break.pk).state == "open"


def test_another_operator_approves_it_is_posted_once_and_the_break_resolved(amount_break):
    receivable_before = receivable()
    assert receivable_before == 2000 - fee(1900)  # captured 20.00, less the fees the PSP kept
    correction = correction_propose(break_id=amount_break.pk, adjustment="write_off_psp_receivable",
                                    reason="short-paid", actor=ALICE)

    correction_approve(correction_id=correction.pk, reason="checked the PSP's statement", actor=BOB)
    with pytest.raises(CorrectionConflict):
        correction_approve(correction_id=correction.pk, reason="twice", actor=BOB)

    assert posted(correction) == {f"correction:{correction.pk}": 1}
    assert receivable() == 1900 - fee(1900)  # what the PSP will pay out, no more
    assert ledger_selectors.account_balance(code=accounts.PSP_FEES, currency="usd") == fee(1900) + 100
    correction.refresh_from_db()
    assert (correction.state, correction.decided_by, correction.decision_reason) == (
        "approved", BOB, "checked the PSP's statement")
    assert list(correction.transitions.values_list("from_state", "to_state", "actor")) == [
        ("", "proposed", ALICE), ("proposed", "approved", BOB)]
    brk = Break.objects.get(pk=amount_break.pk)
    assert (brk.state, brk.resolution, brk.resolved_by) == ("resolved", "written_off", BOB)
    assert f"correction #{correction.pk} posted" in brk.resolutions.get().reason
    assert set(ledger_selectors.trial_balance().values()) == {0}
    assert money_audit() == []


def test_a_rejection_posts_nothing_and_leaves_the_break_open(amount_break):
    before = transactions()
    correction = correction_propose(break_id=amount_break.pk, adjustment="bank_receipt_unbooked",
                                    reason="wrong guess", actor=ALICE)
    with pytest.raises(CorrectionInvalid):
        correction_reject(correction_id=correction.pk, reason=" ", actor=BOB)
    correction_reject(correction_id=correction.pk, reason="the bank has not received it", actor=BOB)
    with pytest.raises(CorrectionConflict):
        correction_approve(correction_id=correction.pk, reason="changed my mind", actor=BOB)
    assert transactions() == before and posted(correction) == {}
    correction.refresh_from_db()
    assert correction.state == "rejected" and correction.posting_key is None
    assert Break.objects.get(pk=amount_break.pk).state == "open"
    again = correction_propose(break_id=amount_break.pk, adjustment="write_off_psp_receivable", amount=100,
                               currency="usd", reason="the write-off after all", actor=BOB)
    assert again.state == "proposed"


def test_a_write_off_is_posted_never_only_labelled(amount_break):
    with pytest.raises(BreakResolutionError, match="propose a correction"):
        break_resolve(break_id=amount_break.pk, resolution="written_off", reason="small", actor=ALICE)
    correction_propose(break_id=amount_break.pk, adjustment="write_off_psp_receivable", reason="x", actor=ALICE)
    with pytest.raises(BreakResolutionError, match="proposed correction"):
        break_resolve(break_id=amount_break.pk, resolution="psp_corrected", reason="meanwhile", actor=BOB)
    assert Break.objects.get(pk=amount_break.pk).state == "open"


def test_only_breaks_with_a_difference_in_money_are_corrected(tmp_path):
    settled(tmp_path, [row("charge", gross=0, fee=0, gross_text="1O", pi="pi_broken", created=timezone.now())])
    malformed = Break.objects.get(break_class="malformed_line")
    with pytest.raises(CorrectionInvalid):
        correction_propose(break_id=malformed.pk, adjustment="write_off_psp_receivable", amount=100, currency="usd",
                           reason="x", actor=ALICE)
    assert not Correction.objects.exists()


def test_a_currency_break_is_restated_in_the_settled_currency(tmp_path):
    captured(amount=3000, psp_reference="pi_ccy")
    settled(tmp_path, [row("charge", gross=3000, fee=fee(3000), currency="eur", pi="pi_ccy",
                           created=timezone.now() - timedelta(hours=1), payout="po_eur")])
    brk = Break.objects.get(break_class="currency_mismatch")
    correction = correction_propose(break_id=brk.pk, adjustment="restate_currency", reason="settled in EUR",
                                    actor=ALICE)
    correction_approve(correction_id=correction.pk, reason="agreed", actor=BOB)
    assert correction.entries == [
        [accounts.PSP_RECEIVABLE, "usd", -3000], [accounts.PLATFORM_COMMISSION, "usd", 3000],
        [accounts.PSP_RECEIVABLE, "eur", 3000], [accounts.PLATFORM_COMMISSION, "eur", -3000]]
    assert receivable("usd") == 0  # the USD the PSP never owed is gone
    assert receivable("eur") == 3000 - fee(3000)
    assert money_audit() == []


@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_once_post_once(tmp_path):
    """Two checkers approve the same proposal at the same moment, on two connections: real row locks."""
    captured(amount=2000, psp_reference="pi_race")
    settled(tmp_path, [row("charge", gross=1900, fee=fee(1900), pi="pi_race",
                           created=timezone.now() - timedelta(hours=1))])
    brk = Break.objects.get(break_class="amount_mismatch")
    correction = correction_propose(break_id=brk.pk, adjustment="write_off_psp_receivable", reason="x", actor=ALICE)
    start, outcomes = threading.Barrier(2), []

    def approve(actor: str) -> None:
        try:
            start.wait()
            correction_approve(correction_id=correction.pk, reason="race", actor=actor)
            outcomes.append("approved")
        except CorrectionConflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(actor,)) for actor in (BOB, "operator:carol")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["approved", "conflict"]
    assert posted(correction) == {f"correction:{correction.pk}": 1}
    assert Correction.objects.get(pk=correction.pk).transitions.count() == 2
    assert money_audit() == []
