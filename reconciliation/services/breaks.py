"""Operator decisions on breaks."""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from reconciliation.exceptions import BreakResolutionError
from reconciliation.models import Break, BreakResolution, BreakState, CorrectionState, Resolution

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
