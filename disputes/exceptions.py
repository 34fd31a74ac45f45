"""Disputes' domain errors (``core.exceptions`` groups: how a caller reacts). A dispute the PSP reported
is always stored: these say why its money was not booked (``Dispute.problem`` keeps the code)."""
from core.exceptions import Conflict, InvalidRequest, NotFound


class DisputeNotFound(NotFound):
    message = "No such dispute."


class DisputeNotBookable(InvalidRequest):
    """The dispute is kept for an operator; no money moved."""

    code = "dispute_not_bookable"


class DisputeUnknownCharge(DisputeNotBookable):
    code = "unknown_charge"
    message = "The dispute names a charge no payment order of ours has: stored for an operator, no money moved."


class DisputeNotCaptured(DisputeNotBookable):
    code = "not_captured"


class DisputeCurrencyMismatch(DisputeNotBookable):
    code = "currency_mismatch"


class DisputeExceedsCaptured(DisputeNotBookable):
    code = "exceeds_captured"


class DisputeReportInvalid(InvalidRequest):
    """A dispute object or line we cannot read (no id, no positive amount, no currency)."""

    code = "dispute_invalid"


class DisputeOrderUndecided(Conflict):
    """The order's payment is still being decided (a dispute reported right after the charge): nothing is
    stored; the report is applied again later (the PSP resends a failed webhook; the next reconciliation run
    takes the line again)."""

    code = "order_undecided"
