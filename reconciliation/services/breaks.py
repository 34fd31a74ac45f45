"""Operator decisions on breaks."""
from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from reconciliation.exceptions import BreakResolutionError, BreakWorkError
from reconciliation.models import (
    Break,
    BreakNote,
    BreakNoteKind,
    BreakResolution,
    BreakState,
    CorrectionState,
    Resolution,
)

logger = logging.getLogger(__name__)

#: What an operator may choose; the others are written by reconciliation runs. ``written_off`` only for a
#: break without money: one with an amount is written off by posting it (an approved correction).
OPERATOR_RESOLUTIONS = (Resolution.BOOKED_MANUALLY, Resolution.PSP_CORRECTED, Resolution.WRITTEN_OFF,
                        Resolution.NO_ACTION)


@transaction.atomic
def break_resolve(*, break_id: int, resolution: str, reason: str, actor: str) -> Break:
    """Close an open break with a resolution and a reason; writes an audit row."""
    reason = (reason or "").strip()
    if not reason:
        raise BreakResolutionError("a reason is required")
    if resolution not in OPERATOR_RESOLUTIONS:
        raise BreakResolutionError(f"unknown resolution {resolution!r}")
    brk = Break.objects.select_for_update().get(pk=break_id)
    if resolution == Resolution.WRITTEN_OFF and (brk.expected_amount is not None or brk.actual_amount is not None):
        raise BreakResolutionError(f"break {brk.pk} holds an amount: a write-off is posted (propose a correction)")
    if brk.corrections.filter(state=CorrectionState.PROPOSED).exists():
        raise BreakResolutionError(f"break {brk.pk} has a proposed correction: approve or reject it first")
    return break_close(brk=brk, resolution=resolution, reason=reason, actor=actor)


def break_close(*, brk: Break, resolution: str, reason: str, actor: str) -> Break:
    """Resolve the locked, open ``brk`` and write its audit row (``break_resolve``, an approved correction)."""
    if brk.state != BreakState.OPEN:
        raise BreakResolutionError(f"break {brk.pk} is {brk.state}, not open")
    previous = brk.state
    brk.state = BreakState.RESOLVED
    brk.resolution = resolution
    brk.reason = reason
    brk.resolved_by = actor[:100]
    brk.resolved_at = timezone.now()
    brk.save(update_fields=["state", "resolution", "reason", "resolved_by", "resolved_at"])
    BreakResolution.objects.create(brk=brk, from_state=previous, to_state=brk.state, resolution=resolution,
                                   reason=reason, actor=actor[:100])
    logger.info("event=break_resolved break_id=%s class=%s resolution=%s actor=%s", brk.pk, brk.break_class,
                resolution, actor)
    return brk


def break_note_add(*, break_id: int, text: str, actor: str) -> BreakNote:
    """Append an operator's note to a break (open or not): notes are never edited or deleted."""
    text = (text or "").strip()
    if not text:
        raise BreakWorkError("a note needs some text", param="text")
    if not Break.objects.filter(pk=break_id).exists():
        raise BreakWorkError(f"no break {break_id}")
    note = BreakNote.objects.create(brk_id=break_id, kind=BreakNoteKind.NOTE, text=text, actor=actor[:100])
    logger.info("event=break_note_added break_id=%s note_id=%s actor=%s", break_id, note.pk, actor)
    return note


@transaction.atomic
def break_assign(*, break_id: int, owner_username: str | None, reason: str, actor: str) -> Break:
    """Give an open break to an operator (an active staff user), or to nobody with ``None``; the change and
    its reason are written as a note in the same transaction."""
    reason = (reason or "").strip()
    if not reason:
        raise BreakWorkError("a reason is required", param="reason")
    owner = None
    if owner_username:
        owner = get_user_model().objects.filter(username=owner_username, is_active=True, is_staff=True).first()
        if owner is None:
            raise BreakWorkError(f"{owner_username!r} is not an active operator", param="owner")
    brk = Break.objects.select_for_update(of=("self",)).select_related("owner").get(pk=break_id)
    if brk.state != BreakState.OPEN:
        raise BreakWorkError(f"break {brk.pk} is {brk.state}, not open")
    previous = brk.owner.get_username() if brk.owner else "nobody"
    brk.owner = owner
    brk.save(update_fields=["owner"])
    BreakNote.objects.create(brk=brk, kind=BreakNoteKind.OWNER, actor=actor[:100],
                             text=f"owner: {previous} → {owner.get_username() if owner else 'nobody'}: {reason}")
    logger.info("event=break_assigned break_id=%s owner=%s actor=%s", brk.pk, owner_username or "", actor)
    return brk
