"""Nothing left hanging: the recovery round re-sends payouts whose task was lost, asks the PSP about those
it did not answer for, those in transit whose webhook has not come and those paid lately (a bank return
whose webhook was lost), and takes back failed payouts' transfers; operators send dead-lettered payouts
back (the orders' sweeper and janitor, in one round)."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.db import db_connection_release
from core.transitions import transition_apply
from payments.psp.base import PSPError
from payouts.exceptions import PayoutReplayNotPossible
from payouts.models import Payout, PayoutState
from payouts.psp import get_payout_provider
from payouts.psp.base import PayoutResult
from payouts.services.enqueue import enqueue_payout, enqueue_transfer_reversal
from payouts.services.execution import (
    payout_apply_result_or_dead_letter,
    payout_lock,
    payout_transfer_record,
)

logger = logging.getLogger(__name__)


def _due(queryset, *, limit: int) -> list[str]:
    """Claim due rows (skipping those another round holds) by pushing their next action out."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(queryset.filter(next_action_at__lte=now).select_for_update(skip_locked=True)
                   .order_by("next_action_at").values_list("id", flat=True)[:limit])
        Payout.objects.filter(pk__in=ids).update(next_action_at=now + timedelta(seconds=settings.PAYMENT_STALL_SECONDS))
    return ids


def payouts_recover(*, limit: int = 500) -> int:
    """One round: every pending, in-transit or lately paid payout that is due is resolved; every failed payout whose
    transfer is not taken back yet gets its reversal task. Returns how many payouts were looked at."""
    returnable = Q(state=PayoutState.PAID, completed_at__gte=timezone.now() - timedelta(
        days=settings.PAYOUT_RETURN_WINDOW_DAYS))
    due = _due(Payout.objects.filter(Q(state__in=[PayoutState.PENDING, PayoutState.IN_TRANSIT]) | returnable),
               limit=limit)
    for payout_id in due:
        try:
            payout_resolve(payout_id=payout_id)
        except PSPError as exc:  # the next round asks again
            logger.warning("event=payout_recovery_psp_error payout=%s error=%s", payout_id, exc)
    reversals = _due(Payout.objects.filter(state=PayoutState.FAILED, transfer_reversed_at__isnull=True)
                     .exclude(psp_transfer_id=""), limit=limit)
    for payout_id in reversals:
        with transaction.atomic():
            enqueue_transfer_reversal(payout_id)
    if due or reversals:
        logger.info("event=payout_recovery resolved=%s reversals=%s", len(due), len(reversals))
    return len(due) + len(reversals)


def payout_resolve(*, payout_id: str, actor: str = "janitor") -> str:
    """What became of a payout nobody has finished: asked at the PSP and applied as a webhook would be; a
    pending one the PSP shows no payout for is sent again (under new keys if the PSP spent the old ones)."""
    payout = Payout.objects.get(pk=payout_id)
    if payout.state in (PayoutState.IN_TRANSIT, PayoutState.PAID):
        return _ask_again(payout, actor=actor)
    if payout.state != PayoutState.PENDING:
        return payout.state
    if payout.attempts:  # sent at least once: the PSP may have made the transfer or the payout
        result = _ask_psp(payout, actor=actor)
        if result is not None:
            return payout_apply_result_or_dead_letter(payout_id=payout.id, result=result, actor=actor)
    with transaction.atomic():
        payout = payout_lock(payout_id)
        if payout.state == PayoutState.PENDING:
            _send_again(payout, reason="the PSP shows no payout for it")
    return payout.state


def _ask_again(payout: Payout, *, actor: str) -> str:
    """A payout in transit whose payout.paid/failed has not come, or a paid one whose return (payout.failed
    after paid) may have been lost: the PSP's payout is read and applied; still the same, asked again later
    (a paid one until ``PAYOUT_RETURN_WINDOW_DAYS`` after it was paid)."""
    before = payout.state
    db_connection_release()
    result = get_payout_provider().retrieve_payout(payout.psp_payout_id, psp_account=payout.psp_account_id)
    state = payout_apply_result_or_dead_letter(payout_id=payout.id, result=result, actor=actor)
    if state == before == PayoutState.IN_TRANSIT:
        Payout.objects.filter(pk=payout.pk, state=state).update(
            next_action_at=timezone.now() + timedelta(seconds=settings.PAYOUT_IN_TRANSIT_CHECK_SECONDS))
    elif state == before == PayoutState.PAID:
        window_ends = payout.completed_at + timedelta(days=settings.PAYOUT_RETURN_WINDOW_DAYS)
        later = timezone.now() + timedelta(seconds=settings.PAYOUT_RETURN_CHECK_SECONDS)
        Payout.objects.filter(pk=payout.pk, state=state).update(
            next_action_at=None if later > window_ends else later)
    return state


def _ask_psp(payout: Payout, *, actor: str) -> PayoutResult | None:
    """The PSP's payout for ours, found under any of its keys (the transfer recorded on the way), or None.
    The PSP's lists are strongly consistent: None means it made none."""
    db_connection_release()
    psp = get_payout_provider()
    if payout.psp_payout_id:
        return psp.retrieve_payout(payout.psp_payout_id, psp_account=payout.psp_account_id)
    if not payout.psp_transfer_id:
        transfer = psp.find_transfer(psp_account=payout.psp_account_id, payout_id=payout.id)
        if transfer is None:
            return None
        payout_transfer_record(payout_id=payout.id, transfer=transfer, actor=actor)
    return psp.find_payout(psp_account=payout.psp_account_id, psp_bank_account=payout.psp_bank_account_id,
                           payout_id=payout.id)


def _send_again(payout: Payout, *, reason: str) -> None:
    """A locked pending payout the PSP shows nothing more for goes back to the executor: under the same keys
    (a replay, if the PSP did act), or new ones if the PSP saved a failure against them."""
    fields = ["next_action_at", "updated_at"]
    if payout.psp_key_spent_at:
        payout.psp_key_generation += 1
        payout.psp_key_spent_at = None
        fields += ["psp_key_generation", "psp_key_spent_at"]
        reason += f"; its keys were spent: new keys {payout.psp_key_base}"
    payout.next_action_at = timezone.now() + timedelta(seconds=settings.PAYMENT_STALL_SECONDS)
    payout.save(update_fields=fields)
    logger.info("event=payout_send_again payout=%s key=%s why=%s", payout.id, payout.psp_key_base, reason)
    enqueue_payout(payout.id)


def payout_replay_dead_letter(*, payout_id: str, operator: str, reason: str) -> str:
    """An operator sends a dead-lettered payout back. The PSP is asked first: a payout it made is applied,
    never made twice; otherwise it is sent again as the recovery round would."""
    if not reason.strip():
        raise ValueError("a reason is required")
    actor = f"operator:{operator}"
    payout = Payout.objects.get(pk=payout_id)
    if payout.state != PayoutState.DEAD_LETTER:
        return payout.state
    try:
        result = _ask_psp(payout, actor=actor)
    except PSPError as exc:
        raise PayoutReplayNotPossible(f"The PSP could not be asked about {payout.id}: {exc}") from exc
    if result is not None:
        return payout_apply_result_or_dead_letter(payout_id=payout.id, result=result, actor=actor)
    with transaction.atomic():
        payout = payout_lock(payout_id)
        if payout.state != PayoutState.DEAD_LETTER:
            return payout.state
        payout.attempts = 0
        transition_apply(payout, payout.redrive, actor=actor, reason=reason)
        _send_again(payout, reason=reason)
    return payout.state
