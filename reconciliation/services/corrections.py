"""Corrections under maker-checker: an operator proposes an adjusting ledger posting for a break, another
approves (it is posted and the break resolved, in one transaction) or rejects it (nothing is posted).

The legs come from a fixed list of adjustments (``ADJUSTMENTS``), never typed by hand, and are fixed at
the proposal: what the checker approves is exactly what is posted. Every step leaves an audit row
(``CorrectionTransition``: who, when, why); the posting goes through ``ledger.services`` under the
correction's own key (``correction:<id>``), so it happens once whatever is retried.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from core.money import format_money, normalize_currency
from core.transitions import transition_apply
from ledger import accounts
from ledger.services import EntrySpec, ledger_transaction_post
from reconciliation.exceptions import CorrectionConflict, CorrectionInvalid, SelfApprovalRefused
from reconciliation.models import (
    Break,
    BreakClass,
    BreakState,
    Correction,
    CorrectionState,
    CorrectionTransition,
    Resolution,
)

from .breaks import break_close

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adjustment:
    """One allowed adjusting posting: ``amount`` debited to ``debit`` and credited to ``credit``."""

    label: str
    debit: str
    credit: str
    resolution: str  # what the break is resolved as once it is posted
    #: Moves the PSP receivable from the break's expected currency to its actual one (two legs, each
    #: balanced within its currency, against the platform's revenue): the break's own figures, not a typed amount.
    restates_currency: bool = False

    def legs(self, *, amount: int, currency: str, brk: Break) -> list[list]:
        if not self.restates_currency:
            return [[self.debit, currency, amount], [self.credit, currency, -amount]]
        out, out_currency = brk.expected_amount, normalize_currency(brk.expected_currency)
        into, into_currency = brk.actual_amount, normalize_currency(brk.actual_currency)
        return [[self.debit, out_currency, -out], [self.credit, out_currency, out],  # reversed where it was
                [self.debit, into_currency, into], [self.credit, into_currency, -into]]  # booked where it is


#: The only postings a correction may make, by code.
ADJUSTMENTS: dict[str, Adjustment] = {
    "write_off_psp_receivable": Adjustment(
        "Write off a PSP shortfall: Dr expenses:psp_fees / Cr assets:psp_receivable",
        accounts.PSP_FEES, accounts.PSP_RECEIVABLE, Resolution.WRITTEN_OFF),
    "psp_receivable_surplus": Adjustment(
        "The PSP owes more than booked: Dr assets:psp_receivable / Cr revenue:platform_commission",
        accounts.PSP_RECEIVABLE, accounts.PLATFORM_COMMISSION, Resolution.BOOKED_MANUALLY),
    "bank_receipt_unbooked": Adjustment(
        "The bank received a PSP payout the books miss: Dr assets:bank / Cr assets:psp_receivable",
        accounts.BANK, accounts.PSP_RECEIVABLE, Resolution.BOOKED_MANUALLY),
    "bank_receipt_not_received": Adjustment(
        "The books hold a receipt the bank does not: Dr assets:psp_receivable / Cr assets:bank",
        accounts.PSP_RECEIVABLE, accounts.BANK, Resolution.BOOKED_MANUALLY),
    "write_off_bank_shortfall": Adjustment(
        "Write off a bank shortfall: Dr expenses:psp_fees / Cr assets:bank",
        accounts.PSP_FEES, accounts.BANK, Resolution.WRITTEN_OFF),
    "restate_currency": Adjustment(
        "Restate the receivable in the settled currency (the break's two figures): per currency,"
        " assets:psp_receivable against revenue:platform_commission",
        accounts.PSP_RECEIVABLE, accounts.PLATFORM_COMMISSION, Resolution.BOOKED_MANUALLY, restates_currency=True),
}

#: The breaks a correction may resolve: those with a difference in money between the books and the PSP or bank.
CORRECTABLE_CLASSES = (BreakClass.AMOUNT_MISMATCH, BreakClass.CURRENCY_MISMATCH, BreakClass.BANK_BALANCE_MISMATCH)


def _required(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise CorrectionInvalid("a reason is required", param="reason")
    return reason


def correction_propose(*, break_id: int, adjustment: str, reason: str, actor: str, amount: int | None = None,
                       currency: str = "") -> Correction:
    """Propose an adjusting posting for an open break; posts nothing. ``amount`` (minor units) and
    ``currency`` default to the break's difference; a currency restatement takes the break's figures."""
    reason = _required(reason)
    if adjustment not in ADJUSTMENTS:
        raise CorrectionInvalid(f"unknown adjustment {adjustment!r}", param="adjustment")
    try:
        with transaction.atomic():
            brk = Break.objects.select_for_update().get(pk=break_id)
            amount, currency = _proposed_amount(brk, ADJUSTMENTS[adjustment], amount, currency)
            legs = ADJUSTMENTS[adjustment].legs(amount=amount, currency=currency, brk=brk)
            correction = Correction.objects.create(brk=brk, adjustment=adjustment, amount=amount, currency=currency,
                                                   entries=legs, reason=reason, proposed_by=actor[:100])
            CorrectionTransition.objects.create(correction=correction, from_state="",
                                                to_state=CorrectionState.PROPOSED, actor=actor[:100],
                                                reason=reason[:500])
    except IntegrityError as exc:  # the partial unique index: one proposal per break at a time
        raise CorrectionConflict(f"break {break_id} already has a proposed correction") from exc
    logger.info("event=correction_proposed correction_id=%s break_id=%s adjustment=%s amount=%s currency=%s actor=%s",
                correction.pk, brk.pk, adjustment, amount, currency, actor)
    return correction


def _proposed_amount(brk: Break, adjustment: Adjustment, amount: int | None, currency: str) -> tuple[int, str]:
    if brk.state != BreakState.OPEN:
        raise CorrectionConflict(f"break {brk.pk} is {brk.state}, not open")
    if brk.break_class not in CORRECTABLE_CLASSES:
        raise CorrectionInvalid(f"a {brk.break_class} break has no difference in money to correct")
    if adjustment.restates_currency:
        if brk.break_class != BreakClass.CURRENCY_MISMATCH or not brk.expected_amount or not brk.actual_amount:
            raise CorrectionInvalid("only a currency mismatch with both figures is restated", param="adjustment")
        return abs(brk.actual_amount), normalize_currency(brk.actual_currency)
    if amount is None:
        if brk.expected_amount is None or brk.actual_amount is None or brk.break_class == BreakClass.CURRENCY_MISMATCH:
            raise CorrectionInvalid("give an amount: the break has no single difference", param="amount")
        amount = abs(brk.actual_amount - brk.expected_amount)
    currency = normalize_currency(currency or brk.actual_currency or brk.expected_currency)
    if type(amount) is not int or amount <= 0:
        raise CorrectionInvalid("the amount must be a positive number of minor units", param="amount")
    return amount, currency


def correction_approve(*, correction_id: int, reason: str, actor: str) -> Correction:
    """Approve another operator's proposal: in one transaction, the transition with its audit row, the posting
    (once, under ``correction:<id>``) and the break resolved. The proposer is refused."""
    reason = _required(reason)
    with transaction.atomic():
        correction = _locked(correction_id)
        if correction.proposed_by == actor[:100]:
            raise SelfApprovalRefused(f"{actor} proposed correction {correction.pk}: another operator approves it")
        _transition(correction, correction.approve, actor=actor, reason=reason)
        posting, created = ledger_transaction_post(
            idempotency_key=correction.posting_key,
            description=f"Correction #{correction.pk} of break #{correction.brk_id}: {correction.adjustment}",
            reference=f"break:{correction.brk_id}",
            entries=[EntrySpec(code, currency, amount) for code, currency, amount in correction.entries],
        )
        break_close(brk=correction.brk, resolution=ADJUSTMENTS[correction.adjustment].resolution, actor=actor,
                    reason=f"correction #{correction.pk} posted ({_summary(correction)}), proposed by "
                           f"{correction.proposed_by}: {correction.reason}; approved: {reason}")
    logger.info("event=correction_approved correction_id=%s break_id=%s posting=%s created=%s actor=%s",
                correction.pk, correction.brk_id, posting.pk, created, actor)
    return correction


def correction_reject(*, correction_id: int, reason: str, actor: str) -> Correction:
    """Reject a proposal: nothing is posted and the break stays open (for another proposal or a resolution)."""
    reason = _required(reason)
    with transaction.atomic():
        correction = _locked(correction_id)
        _transition(correction, correction.reject, actor=actor, reason=reason)
    logger.info("event=correction_rejected correction_id=%s break_id=%s actor=%s", correction.pk,
                correction.brk_id, actor)
    return correction


def _locked(correction_id: int) -> Correction:
    """The correction and its break, locked break first (the order ``correction_propose`` and
    ``break_resolve`` take), so that they cannot deadlock."""
    break_id = Correction.objects.filter(pk=correction_id).values_list("brk_id", flat=True).first()
    if break_id is None:
        raise CorrectionInvalid(f"no correction {correction_id}")
    brk = Break.objects.select_for_update().get(pk=break_id)
    correction = Correction.objects.select_for_update().get(pk=correction_id)
    correction.brk = brk
    if correction.state != CorrectionState.PROPOSED:
        raise CorrectionConflict(f"correction {correction.pk} is already {correction.state}")
    return correction


def _transition(correction: Correction, method, *, actor: str, reason: str) -> None:
    try:
        transition_apply(correction, method, actor=actor, reason=reason, by=actor, note=reason)
    except (TransitionNotAllowed, ConcurrentTransition) as exc:
        raise CorrectionConflict(str(exc)) from exc


def _summary(correction: Correction) -> str:
    return ", ".join(f"{code} {format_money(amount, currency)}" for code, currency, amount in correction.entries)
