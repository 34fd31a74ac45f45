"""Payouts' domain errors (``core.exceptions`` groups: how a caller reacts)."""
from core.exceptions import Conflict, InvalidRequest, NotFound


class SellerNotFound(NotFound):
    message = "No such seller."


class SellerSuspended(Conflict):
    code = "seller_suspended"
    message = "The seller is suspended: its payout account cannot change."


class PayoutAccountNotFound(NotFound):
    message = "This seller has no payout account."


class BankAccountRefused(InvalidRequest):
    """The PSP refused the bank account token (unknown, used up, not a bank account)."""

    code = "bank_account_refused"


class PSPUnavailable(Conflict):
    """The PSP did not answer: nothing was changed here, and the same request may be sent again."""

    code = "psp_unavailable"
    message = "The PSP did not answer; nothing was changed. Send the same request again."


class PayoutReplayNotPossible(Exception):
    """The PSP could not be asked about a dead-lettered payout: nothing was changed."""
