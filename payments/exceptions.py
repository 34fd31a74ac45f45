"""Domain errors of payments: the API's (grouped as in ``core.exceptions``), then the operators'."""
from core.exceptions import InvalidRequest, NotFound


class SellerNotOnboarded(InvalidRequest):
    code = "seller_not_onboarded"
    message = "The seller is not onboarded for this client."


class AmountRefusedByPSP(InvalidRequest):
    """An order the PSP would refuse (below its minimum charge, a fraction of a whole-unit currency…)."""

    code = "amount_invalid"
    message = "The PSP does not accept this amount."


class PaymentOrderNotFound(NotFound):
    message = "No such payment order."


class RefundNotAllowed(InvalidRequest):
    code = "payment_order_not_refundable"
    message = "Only a succeeded payment order can be refunded."


class RefundTooLarge(InvalidRequest):
    code = "amount_too_large"
    message = "The refund would exceed what was captured."


class PSPMismatch(Exception):
    """The PSP's success does not match the payment we asked for: a human must look."""

    code = "psp_mismatch"


class PSPAmountMismatch(PSPMismatch):
    """The PSP reports another amount or currency than the order's."""

    code = "psp_amount_mismatch"


class ReplayNotPossible(Exception):
    """A dead-lettered order can't be sent back just now (the PSP can't be asked, or its search may lag)."""


class DoubleChargeRefundFailed(Exception):
    """The PSP refused to refund a suspected double charge; it stays open."""
