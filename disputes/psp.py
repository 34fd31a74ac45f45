"""The PSP's word on a dispute, typed: a ``DisputeReport`` read from a Stripe dispute object (a webhook's
``data.object``, or ``GET /v1/disputes/{id}``) or from a settlement line. The rest of the app never reads
the PSP's JSON."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from core.money import UnknownCurrency, normalize_currency
from disputes.exceptions import DisputeReportInvalid
from disputes.models import DisputeSource, DisputeState

#: Stripe's dispute statuses -> ours. ``warning_*`` (inquiries: no money moves at the PSP) are not disputes
#: we book; ``STRIPE_INQUIRY_PREFIX`` names them.
STRIPE_STATES = {
    "needs_response": DisputeState.NEEDS_RESPONSE,
    "under_review": DisputeState.UNDER_REVIEW,
    "won": DisputeState.WON,
    "lost": DisputeState.LOST,
}
STRIPE_INQUIRY_PREFIX = "warning_"


@dataclass(frozen=True)
class DisputeReport:
    """What the PSP said about one dispute, from either source. ``fee`` is the PSP's dispute fee taken
    with it (0 when the report does not say), in ``fee_currency``."""

    psp_dispute_id: str
    amount: int
    currency: str
    state: DisputeState
    source: DisputeSource
    psp_payment_reference: str = ""
    psp_charge_id: str = ""
    fee: int = 0
    fee_currency: str = ""
    reason: str = ""
    psp_status: str = ""
    due_by: datetime | None = None

    def __post_init__(self) -> None:
        if not self.psp_dispute_id or len(self.psp_dispute_id) > 100:
            raise DisputeReportInvalid("A dispute needs the PSP's id (1 to 100 characters).", param="id")
        if type(self.amount) is not int or self.amount <= 0:
            raise DisputeReportInvalid(f"A dispute's amount must be a positive integer, not {self.amount!r}.",
                                       param="amount")
        if type(self.fee) is not int or self.fee < 0:
            raise DisputeReportInvalid(f"A dispute's fee must be a non-negative integer, not {self.fee!r}.",
                                       param="fee")


def _currency(value, param: str) -> str:
    try:
        return normalize_currency(value)
    except (UnknownCurrency, ValueError, TypeError, AttributeError) as exc:
        raise DisputeReportInvalid(f"{param} {value!r} is not a currency code.", param=param) from exc


def stripe_is_inquiry(obj: dict) -> bool:
    return str(obj.get("status", "")).startswith(STRIPE_INQUIRY_PREFIX)


def stripe_dispute_report(obj: dict) -> DisputeReport:
    """A Stripe dispute object as a report. The fee is the withdrawal's (the balance transaction taking the
    disputed amount, Stripe's ``fee`` on it); its currency the balance transaction's."""
    if not isinstance(obj, dict) or obj.get("object", "dispute") != "dispute":
        raise DisputeReportInvalid("Not a dispute object.", param="data.object")
    status = str(obj.get("status", ""))
    if status not in STRIPE_STATES:
        raise DisputeReportInvalid(f"Dispute status {status!r} is not one we book.", param="status")
    fee, fee_currency = 0, ""
    for bt in obj.get("balance_transactions") or []:
        if isinstance(bt, dict) and isinstance(bt.get("amount"), int) and bt["amount"] < 0:
            fee = bt.get("fee") if isinstance(bt.get("fee"), int) and bt.get("fee") > 0 else 0
            fee_currency = _currency(bt.get("currency"), "balance_transactions.currency") if fee else ""
            break
    due = (obj.get("evidence_details") or {}).get("due_by")
    charge = obj.get("charge")
    intent = obj.get("payment_intent")
    return DisputeReport(
        psp_dispute_id=str(obj.get("id") or ""),
        amount=obj.get("amount"),
        currency=_currency(obj.get("currency"), "currency"),
        state=STRIPE_STATES[status],
        source=DisputeSource.WEBHOOK,
        psp_payment_reference=intent if isinstance(intent, str) else "",
        psp_charge_id=charge if isinstance(charge, str) else "",
        fee=fee,
        fee_currency=fee_currency,
        reason=str(obj.get("reason") or "")[:100],
        psp_status=status,
        due_by=datetime.fromtimestamp(due, tz=UTC) if isinstance(due, int) else None,
    )
