"""Creating payouts with their money, sending them to the PSP, and recording what it says.

Each step is the order's discipline (``payments.services.execution``): (a) commit the payout as being
sent, counting the attempt; (b) call the PSP outside any transaction, with keys derived from the payout
(``<id>:transfer``, ``<id>:payout``), so a resend is a replay; (c) record the answer in a new transaction
together with its money. No answer is not a failure: the payout stays pending and the recovery round
asks the PSP (``recovery``).

Money: created, ``Dr seller_payable / Cr payouts_in_transit`` and the wallet debited (``payout:<id>:created``);
paid, ``Dr payouts_in_transit / Cr psp_receivable`` (``payout:<id>:paid``); failed, ``Dr payouts_in_transit /
Cr seller_payable`` and the wallet credited, available at once (``payout:<id>:returned``), and the transfer
taken back from the connected account. A dead-lettered payout's money stays in transit: the PSP may pay it.
A paid payout the bank sends back (the PSP reports it failed after paid): its money is at the PSP again, in the
connected account, ``Dr psp_receivable / Cr payouts_in_transit`` (``payout:<id>:bank_returned``, the paid
posting reversed), then as any failure: back to the seller, the transfer taken back (``_bank_return``).
"""
from __future__ import annotations

import logging
from datetime import date, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.db import db_connection_release
from core.transitions import transition_apply
from ledger import accounts
from ledger.services import EntrySpec, ledger_transaction_post
from payments.psp.base import PSPKeySpent, PSPPermanentError, PSPUnknownOutcome
from payments.services.execution import retry_delay
from payouts.models import Payout, PayoutAccount, PayoutRunItem, PayoutState, PayoutTransition
from payouts.psp import get_payout_provider
from payouts.psp.base import PayoutRequest, PayoutResult, PayoutStatus, TransferRequest, TransferResult
from payouts.services.accounts import payout_account_mark_unusable
from payouts.services.enqueue import enqueue_payout, enqueue_transfer_reversal
from wallet.services import wallet_available_locked, wallet_credit, wallet_debit

logger = logging.getLogger(__name__)
Outcome = PayoutRunItem.Outcome
OPEN_STATES = (PayoutState.PENDING, PayoutState.IN_TRANSIT, PayoutState.DEAD_LETTER)


class PayoutMismatch(Exception):
    """The PSP's object contradicts the payout (another payout, amount or currency): an operator decides."""

    code = "psp_mismatch"


def payout_posting_key(payout_id: str, what: str) -> str:
    """``payout:<id>:created`` / ``:paid`` / ``:returned``: the ledger's and the wallet's key, posted once."""
    return f"payout:{payout_id}:{what}"


def _after(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


def payout_lock(payout_id: str) -> Payout:
    """The payout, locked until the transaction ends."""
    return Payout.objects.select_for_update().get(pk=payout_id)


# -- creation ---------------------------------------------------------------------------------------
@transaction.atomic
def payout_create(*, account: PayoutAccount, currency: str, payout_date: date, actor: str,
                  minimum: int) -> tuple[str, Payout | None, int]:
    """One payout of the seller's whole available balance in ``currency``, with its money, in one
    transaction; sent to the PSP on commit. Returns ``(outcome, payout, available)``.

    The seller's wallet is locked first and its available balance read under the lock, so a refund or a
    concurrent run cannot change it between the look and the debit; one payout per seller, currency and
    date (a unique constraint) makes a second run of the same date create nothing.
    """
    seller_id = account.seller_id
    available = wallet_available_locked(owner_id=seller_id, currency=currency, as_of=timezone.now())
    if available <= 0:
        return Outcome.NOTHING_AVAILABLE, None, available
    if available < minimum:
        return Outcome.BELOW_MINIMUM, None, available
    try:
        with transaction.atomic():
            payout = Payout.objects.create(
                seller_id=seller_id, account=account, psp_account_id=account.psp_account_id,
                psp_bank_account_id=account.psp_bank_account_id, amount=available, currency=currency,
                payout_date=payout_date, next_action_at=_after(settings.PAYMENT_STALL_SECONDS))
    except IntegrityError:
        return Outcome.ALREADY_PAID_OUT, None, available
    PayoutTransition.objects.create(payout=payout, from_state="", to_state=payout.state, actor=actor[:100],
                                    reason=f"payout run of {payout_date}")
    key = payout_posting_key(payout.id, "created")
    ledger_transaction_post(idempotency_key=key, description=f"Payout {payout.id} to seller {seller_id}",
                            reference=payout.id, entries=[
                                EntrySpec(accounts.seller_payable(seller_id), currency, available),
                                EntrySpec(accounts.PAYOUTS_IN_TRANSIT, currency, -available)])
    wallet_debit(owner_id=seller_id, currency=currency, amount=available, idempotency_key=key,
                 reason=f"payout {payout.id}")
    enqueue_payout(payout.id)
    return Outcome.CREATED, payout, available


# -- sending ------------------------------------------------------------------------------------------
def payout_execute(*, payout_id: str, actor: str = "task:payout_execute") -> str:
    """Send a pending payout to the PSP: the transfer to the seller's connected account (once), then the
    payout to their bank. Safe to call any number of times, concurrently too. ``PSPRetryableError`` is
    raised for the task to retry with the same keys. Returns the state."""
    with transaction.atomic():
        payout = payout_lock(payout_id)
        if payout.state != PayoutState.PENDING or payout.psp_key_spent_at:
            return payout.state  # decided, sent, with an operator, or waiting for the recovery round
        payout.attempts += 1
        payout.next_action_at = _after(settings.PSP_TIMEOUT_SECONDS * 2 + settings.PAYMENT_STALL_SECONDS)
        payout.save(update_fields=["attempts", "next_action_at", "updated_at"])
    db_connection_release()
    psp = get_payout_provider()
    if not payout.psp_transfer_id:
        try:
            transfer = psp.create_transfer(TransferRequest(
                idempotency_key=f"{payout.psp_key_base}:transfer", payout_id=payout.id,
                psp_account=payout.psp_account_id, amount=payout.amount, currency=payout.currency))
        except PSPKeySpent as exc:
            return payout_mark_unknown(payout_id=payout_id, reason=f"transfer: {exc}", actor=actor, key_spent=True)
        except PSPUnknownOutcome as exc:
            return payout_mark_unknown(payout_id=payout_id, reason=f"transfer: {exc}", actor=actor)
        except PSPPermanentError as exc:  # refused: nothing left our PSP balance
            return payout_fail(payout_id=payout_id, code=exc.code, message=f"the PSP refused the transfer: {exc}",
                               actor=actor)
        state = payout_transfer_record(payout_id=payout_id, transfer=transfer, actor=actor)
        if state != PayoutState.PENDING:
            return state
    try:
        result = psp.create_payout(PayoutRequest(
            idempotency_key=f"{payout.psp_key_base}:payout", payout_id=payout.id, psp_account=payout.psp_account_id,
            psp_bank_account=payout.psp_bank_account_id, amount=payout.amount, currency=payout.currency,
            metadata={"seller_id": payout.seller_id}))
    except PSPKeySpent as exc:
        return payout_mark_unknown(payout_id=payout_id, reason=f"payout: {exc}", actor=actor, key_spent=True)
    except PSPUnknownOutcome as exc:
        return payout_mark_unknown(payout_id=payout_id, reason=f"payout: {exc}", actor=actor)
    except PSPPermanentError as exc:  # refused: the transfer is taken back (payout_fail)
        return payout_fail(payout_id=payout_id, code=exc.code, message=f"the PSP refused the payout: {exc}",
                           actor=actor)
    return payout_apply_result_or_dead_letter(payout_id=payout_id, result=result, actor=actor)


@transaction.atomic
def payout_transfer_record(*, payout_id: str, transfer: TransferResult, actor: str) -> str:
    """Keep the transfer the PSP made for a pending payout (the payout is then sent under its own key)."""
    payout = payout_lock(payout_id)
    if payout.psp_transfer_id == transfer.psp_reference or payout.state not in OPEN_STATES:
        return payout.state
    if payout.psp_transfer_id or (transfer.amount, transfer.currency) != (payout.amount, payout.currency):
        return _dead_letter(payout, code="psp_mismatch", actor=actor,
                            message=f"transfer {transfer.psp_reference} of {transfer.amount} {transfer.currency} "
                                    f"does not match (recorded: {payout.psp_transfer_id or 'none'})")
    payout.psp_transfer_id = transfer.psp_reference
    payout.save(update_fields=["psp_transfer_id", "updated_at"])
    return payout.state


@transaction.atomic
def payout_mark_unknown(*, payout_id: str, reason: str, actor: str, key_spent: bool = False) -> str:
    """No answer from the PSP: not a failure. The payout stays pending; the recovery round asks the PSP.
    ``key_spent``: the PSP saved a failure against the key, so a resend needs new keys, once the PSP shows
    nothing made by the old ones. Each spent key counts as an attempt."""
    payout = payout_lock(payout_id)
    if payout.state != PayoutState.PENDING:
        return payout.state
    if key_spent:
        payout.psp_key_spent_at = timezone.now()  # a replay from the dead letter knows to take new keys
        if payout.attempts >= settings.PAYOUT_EXECUTE_MAX_ATTEMPTS:
            return _dead_letter(payout, code="retries_exhausted", actor=actor,
                                message=f"{payout.attempts} attempts failed; last error: {reason}")
    payout.next_action_at = _after(settings.PAYMENT_UNKNOWN_CHECK_SECONDS)
    payout.save(update_fields=["psp_key_spent_at", "next_action_at", "updated_at"])
    logger.warning("event=payout_unknown payout=%s key_spent=%s reason=%s", payout.id, key_spent, reason)
    return payout.state


@transaction.atomic
def payout_schedule_retry(*, payout_id: str, error: str, actor: str) -> float | None:
    """After a retryable PSP error: the delay before the next attempt, or ``None`` once the attempts are
    used up and the payout has gone to the dead letter."""
    payout = payout_lock(payout_id)
    if payout.state != PayoutState.PENDING:
        return None
    if payout.attempts >= settings.PAYOUT_EXECUTE_MAX_ATTEMPTS:
        _dead_letter(payout, code="retries_exhausted", actor=actor,
                     message=f"{payout.attempts} attempts failed; last error: {error}")
        return None
    delay = retry_delay(payout.attempts)
    payout.next_action_at = _after(delay + settings.PAYMENT_STALL_SECONDS)
    payout.save(update_fields=["next_action_at", "updated_at"])
    return delay


# -- outcomes -----------------------------------------------------------------------------------------------
def payout_apply_result_or_dead_letter(*, payout_id: str, result: PayoutResult, actor: str) -> str:
    """Apply the PSP's answer; an answer that contradicts the payout goes to an operator."""
    try:
        return payout_apply_result(payout_id=payout_id, result=result, actor=actor)
    except PayoutMismatch as exc:
        return payout_dead_letter(payout_id=payout_id, code=exc.code, message=str(exc), actor=actor)


@transaction.atomic
def payout_apply_result(*, payout_id: str, result: PayoutResult, actor: str) -> str:
    """Record what the PSP said about a payout, with its money. Idempotent and monotonic: a paid or failed
    payout never changes. Used by the task, the webhooks and the recovery round alike."""
    payout = payout_lock(payout_id)
    if payout.state == PayoutState.PAID and result.status is PayoutStatus.FAILED and _is_this_payout(payout, result):
        _bank_return(payout, code=result.failure_code or "payout_failed", actor=actor,
                     message=result.failure_message or "the bank sent the paid payout back")
        return payout.state
    if payout.state in (PayoutState.PAID, PayoutState.FAILED):
        if result.psp_reference != payout.psp_payout_id or (
                result.status in (PayoutStatus.PAID, PayoutStatus.FAILED) and result.status != payout.state):
            logger.error("event=payout_outcome_conflict payout=%s state=%s psp_payout=%s psp_status=%s",
                         payout.id, payout.state, result.psp_reference, result.status)
        return payout.state
    _check_result_is_ours(payout, result)
    if result.status is PayoutStatus.PAID:
        payout.next_action_at = _after(settings.PAYOUT_RETURN_CHECK_SECONDS)  # the bank may still send it back
        transition_apply(payout, payout.pay, actor=actor, reason="the PSP paid it out to the bank",
                         psp_payout_id=result.psp_reference, arrival_date=result.arrival_date)
        ledger_transaction_post(
            idempotency_key=payout_posting_key(payout.id, "paid"), reference=payout.id,
            description=f"Payout {payout.id} paid to seller {payout.seller_id}'s bank",
            entries=[EntrySpec(accounts.PAYOUTS_IN_TRANSIT, payout.currency, payout.amount),
                     EntrySpec(accounts.PSP_RECEIVABLE, payout.currency, -payout.amount)])
    elif result.status is PayoutStatus.FAILED:
        _fail(payout, code=result.failure_code or "payout_failed", actor=actor,
              message=result.failure_message or "the PSP failed the payout", psp_payout_id=result.psp_reference)
    elif payout.state != PayoutState.IN_TRANSIT:
        payout.next_action_at = _after(settings.PAYOUT_IN_TRANSIT_CHECK_SECONDS)
        transition_apply(payout, payout.send, actor=actor, reason="the PSP accepted it: on its way to the bank",
                         psp_payout_id=result.psp_reference, arrival_date=result.arrival_date)
    return payout.state


def _is_this_payout(payout: Payout, result: PayoutResult) -> bool:
    """The PSP's object is the payout on record, for this payout, of its amount and currency."""
    return (result.psp_reference == payout.psp_payout_id and result.payout_id in ("", payout.id)
            and (result.amount, result.currency) == (payout.amount, payout.currency))


def _check_result_is_ours(payout: Payout, result: PayoutResult) -> None:
    """Only the payout we asked for moves money: the PSP's object must name this payout, be the one on
    record (when there is one: another would be a second payout) and carry its amount and currency."""
    if result.payout_id and result.payout_id != payout.id:
        raise PayoutMismatch(f"PSP payout {result.psp_reference} is for {result.payout_id}, not {payout.id}")
    if payout.psp_payout_id and result.psp_reference != payout.psp_payout_id:
        raise PayoutMismatch(f"PSP payout {result.psp_reference} for {payout.id}, which was sent as "
                             f"{payout.psp_payout_id}: a second payout")
    if (result.amount, result.currency) != (payout.amount, payout.currency):
        raise PayoutMismatch(f"the PSP paid {result.amount} {result.currency} for {payout.id}, "
                             f"expected {payout.amount} {payout.currency}")


@transaction.atomic
def payout_fail(*, payout_id: str, code: str, message: str, actor: str) -> str:
    """The PSP refused or failed the payout: its money goes back to the seller's balance (see ``_fail``)."""
    payout = payout_lock(payout_id)
    if payout.state not in OPEN_STATES:
        return payout.state
    _fail(payout, code=code or "psp_refused", message=message, actor=actor)
    return payout.state


def _fail(payout: Payout, *, code: str, message: str, actor: str, psp_payout_id: str = "") -> None:
    """A locked open payout fails: its money is back in the seller's payable and wallet (available at once),
    and its transfer, if one was made, is taken back from the connected account (a task, on commit)."""
    transition_apply(payout, payout.fail, actor=actor, reason=f"PSP: {code}: {message}", code=code,
                     message=message, psp_payout_id=psp_payout_id)
    _give_back(payout, code=code, actor=actor)


def _bank_return(payout: Payout, *, code: str, message: str, actor: str) -> None:
    """A locked paid payout the bank sent back. The money left our PSP balance when it was paid; it is at the PSP
    again, in the seller's connected account: the paid posting is reversed (``bank_returned``: Dr psp_receivable /
    Cr payouts_in_transit), then it is given back as any failure (``returned``: to the seller's payable and wallet,
    the transfer taken back to our balance), all in this transaction with the transition and its audit row."""
    transition_apply(payout, payout.bank_return, actor=actor, reason=f"the bank sent it back: {code}: {message}",
                     code=code, message=message)
    ledger_transaction_post(
        idempotency_key=payout_posting_key(payout.id, "bank_returned"), reference=payout.id,
        description=f"Payout {payout.id} sent back by seller {payout.seller_id}'s bank ({code}): at the PSP again",
        entries=[EntrySpec(accounts.PSP_RECEIVABLE, payout.currency, payout.amount),
                 EntrySpec(accounts.PAYOUTS_IN_TRANSIT, payout.currency, -payout.amount)])
    _give_back(payout, code=code, actor=actor)


def _give_back(payout: Payout, *, code: str, actor: str) -> None:
    """A payout's money from transit back to the seller's payable and wallet, and its transfer taken back; a
    bank account that will not take money (closed...) is marked unusable, so no run pays to it again."""
    key = payout_posting_key(payout.id, "returned")
    ledger_transaction_post(idempotency_key=key, reference=payout.id,
                            description=f"Payout {payout.id} failed ({code}): back to seller {payout.seller_id}",
                            entries=[EntrySpec(accounts.PAYOUTS_IN_TRANSIT, payout.currency, payout.amount),
                                     EntrySpec(accounts.seller_payable(payout.seller_id), payout.currency,
                                               -payout.amount)])
    wallet_credit(owner_id=payout.seller_id, currency=payout.currency, amount=payout.amount, idempotency_key=key,
                  reason=f"payout {payout.id} failed: {code}", held=False)
    logger.warning("event=payout_failed payout=%s code=%s", payout.id, code)
    payout_account_mark_unusable(payout_id=payout.id, account_id=payout.account_id, code=code, actor=actor,
                                 psp_bank_account_id=payout.psp_bank_account_id)
    if payout.psp_transfer_id:
        Payout.objects.filter(pk=payout.pk).update(next_action_at=_after(settings.PAYMENT_STALL_SECONDS))
        enqueue_transfer_reversal(payout.id)


@transaction.atomic
def payout_dead_letter(*, payout_id: str, code: str, message: str, actor: str) -> str:
    payout = payout_lock(payout_id)
    if payout.state in (PayoutState.PENDING, PayoutState.IN_TRANSIT):
        _dead_letter(payout, code=code, message=message, actor=actor)
    return payout.state


def _dead_letter(payout: Payout, *, code: str, message: str, actor: str) -> str:
    transition_apply(payout, payout.dead_letter, actor=actor, reason=message, code=code, message=message)
    logger.error("event=payout_dead_letter payout=%s code=%s message=%s", payout.id, code, message)
    return payout.state


# -- a failed payout's transfer ----------------------------------------------------------------------------
def payout_transfer_reverse(*, payout_id: str, attempt: int = 0, actor: str = "task:payout_transfer_reverse"
                            ) -> bool:
    """Take a failed payout's transfer back from the seller's connected account to our PSP balance (the
    ledger already gave the money back to the seller). The PSP never reverses more than was transferred,
    and the transfer is read first, so a repeat reverses nothing. Returns whether it is done."""
    payout = Payout.objects.get(pk=payout_id)
    if payout.state != PayoutState.FAILED or not payout.psp_transfer_id or payout.transfer_reversed_at:
        return True
    db_connection_release()
    psp = get_payout_provider()
    transfer = psp.find_transfer(psp_account=payout.psp_account_id, payout_id=payout.id)
    if transfer is None or transfer.psp_reference != payout.psp_transfer_id:
        logger.error("event=payout_transfer_missing payout=%s transfer=%s", payout.id, payout.psp_transfer_id)
        return False
    if transfer.amount_reversed < transfer.amount:
        psp.reverse_transfer(transfer=transfer.psp_reference, amount=transfer.amount - transfer.amount_reversed,
                             idempotency_key=f"{payout.id}:reversal:{transfer.amount_reversed}:{attempt}")
    with transaction.atomic():
        payout = payout_lock(payout_id)
        payout.transfer_reversed_at = timezone.now()
        payout.save(update_fields=["transfer_reversed_at", "updated_at"])
    logger.info("event=payout_transfer_reversed payout=%s transfer=%s actor=%s", payout.id,
                payout.psp_transfer_id, actor)
    return True
