from core.errors import ApiError


class SellerNotOnboarded(ApiError):
    default_code = "seller_not_onboarded"
    default_detail = "The seller is not onboarded for this client."


class AmountRefusedByPSP(ApiError):
    """An order the PSP would refuse (below its minimum charge, a fraction of a whole-unit currency…)."""

    default_code = "amount_invalid"
    default_detail = "The PSP does not accept this amount."


class PaymentOrderNotFound(ApiError):
    status_code = 404
    default_code = "resource_missing"
    default_detail = "No such payment order."


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
