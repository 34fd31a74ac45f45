"""Suspected double charges: a PaymentIntent the PSP captured beyond the one that decided the order.
Our books never held that money, so refunding it posts nothing; the refund is the PSP's record."""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from core.db import db_connection_release
from payments.exceptions import DoubleChargeRefundFailed
from payments.models import SuspectedDoubleCharge
from payments.psp import get_psp
from payments.psp.base import PaymentStatus, RefundRequest

logger = logging.getLogger(__name__)


def _resolve(row: SuspectedDoubleCharge, *, state: str, operator: str, reason: str, refund: str = "") -> None:
    row.state = state
    row.resolved_by = f"operator:{operator}"[:100]
    row.resolved_reason = reason[:500]
    row.resolved_at = timezone.now()
    row.refund_psp_reference = refund
    row.save(update_fields=["state", "resolved_by", "resolved_reason", "resolved_at", "refund_psp_reference"])
    logger.warning("event=suspected_double_charge_%s id=%s order=%s psp_reference=%s operator=%s", state, row.pk,
                   row.payment_order_id, row.psp_reference, operator)


def suspected_double_charge_refund(*, suspected_id: int, operator: str, reason: str) -> str:
    """Refund the extra charge in full at the PSP (one idempotency key per suspicion, so a
    second click refunds nothing more), then mark it refunded with who, why and the refund."""
    if not reason.strip():
        raise ValueError("a reason is required")
    row = SuspectedDoubleCharge.objects.get(pk=suspected_id)
    if row.state != SuspectedDoubleCharge.State.OPEN:
        return row.state
    db_connection_release()
    result = get_psp().create_refund(RefundRequest(
        idempotency_key=f"double_charge:{row.pk}", refund_id=f"double_charge:{row.pk}",
        psp_payment_reference=row.psp_reference, amount=row.amount, currency=row.currency,
        metadata={"payment_order_id": row.payment_order_id, "suspected_double_charge": str(row.pk)}))
    if result.status is PaymentStatus.FAILED:
        raise DoubleChargeRefundFailed(f"the PSP refused the refund of {row.psp_reference}: {result.failure_code}")
    with transaction.atomic():
        row = SuspectedDoubleCharge.objects.select_for_update().get(pk=suspected_id)
        if row.state == SuspectedDoubleCharge.State.OPEN:
            _resolve(row, state=SuspectedDoubleCharge.State.REFUNDED, operator=operator, reason=reason,
                     refund=result.psp_reference)
    return row.state


@transaction.atomic
def suspected_double_charge_dismiss(*, suspected_id: int, operator: str, reason: str) -> str:
    """Not a double charge after all (refunded at the PSP by other means, say): closed with a reason."""
    if not reason.strip():
        raise ValueError("a reason is required")
    row = SuspectedDoubleCharge.objects.select_for_update().get(pk=suspected_id)
    if row.state == SuspectedDoubleCharge.State.OPEN:
        _resolve(row, state=SuspectedDoubleCharge.State.DISMISSED, operator=operator, reason=reason)
    return row.state
