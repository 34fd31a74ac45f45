from core.errors import ApiError


class SellerNotOnboarded(ApiError):
    default_code = "seller_not_onboarded"
    default_detail = "The seller is not onboarded for this client."


class PaymentOrderNotFound(ApiError):
    status_code = 404
    default_code = "resource_missing"
    default_detail = "No such payment order."


class PSPAmountMismatch(Exception):
    """The PSP reports another amount or currency than the order's: a human must look."""
