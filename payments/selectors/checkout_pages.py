"""Reads of the hosted payment page: a checkout session as the buyer sees it."""
from dataclasses import dataclass

from django.utils import timezone

from core.models import ApiClient
from core.money import format_money
from payments.models import (
    CheckoutSession,
    PaymentOrder,
    PaymentOrderState,
    Seller,
)

# What a buyer is told about an order that did not go through: the PSP's own words for a card
# problem (written for buyers), ours for the rest; never an internal error.
_BUYER_MESSAGES = {
    "payment_intent_authentication_failure": "Your bank could not confirm that it was you (3-D Secure failed).",
    "authentication_expired": "The confirmation with your bank was not completed in time.",
    "authentication_required": "Your bank asks for a confirmation that could not be made here.",
}
_STATE_LABELS = {
    PaymentOrderState.SUCCEEDED: "Paid",
    PaymentOrderState.FAILED: "Not paid",
    PaymentOrderState.REQUIRES_ACTION: "Waiting for your bank's confirmation",
}


def _buyer_message(order: PaymentOrder) -> str:
    if order.state != PaymentOrderState.FAILED:
        return ""
    if order.failure_code in _BUYER_MESSAGES:
        return _BUYER_MESSAGES[order.failure_code]
    if order.failure_message.startswith("Your card"):
        return order.failure_message
    return "The payment could not be completed."


def _totals_display(amounts: list[tuple[int, str]]) -> str:
    totals: dict[str, int] = {}
    for amount, currency in amounts:
        totals[currency] = totals.get(currency, 0) + amount
    return " + ".join(format_money(amount, currency) for currency, amount in totals.items())


@dataclass(frozen=True)
class CheckoutItemView:
    name: str
    quantity: int
    total_display: str


@dataclass(frozen=True)
class CheckoutOrderView:
    seller_id: str
    seller_name: str
    amount: int
    currency: str
    amount_display: str
    items: list[CheckoutItemView]
    state: str  # "open" before the buyer pays, then the payment order's state
    outcome: str  # "succeeded", "failed" or "processing"
    state_label: str
    message: str  # why it was not paid, for the buyer
    next_action_url: str


@dataclass(frozen=True)
class CheckoutSessionView:
    session: CheckoutSession
    status: str  # open, expired, processing, succeeded, partially_succeeded, failed
    orders: list[CheckoutOrderView]

    @property
    def started(self) -> bool:
        return self.session.payment_event_id is not None

    @property
    def decided(self) -> bool:
        return self.status in ("succeeded", "partially_succeeded", "failed")

    @property
    def total_display(self) -> str:
        return _totals_display([(o.amount, o.currency) for o in self.orders])

    @property
    def paid_display(self) -> str:
        return _totals_display([(o.amount, o.currency) for o in self.orders if o.outcome == "succeeded"])

    @property
    def back_url(self) -> str:
        """Back to the shop: its success page if anything was paid, else its cancel page."""
        paid = self.status in ("succeeded", "partially_succeeded")
        return (self.session.success_url if paid else self.session.cancel_url).replace(
            "{CHECKOUT_SESSION_ID}", self.session.id)

    @property
    def next_action_url(self) -> str:
        return next((o.next_action_url for o in self.orders if o.next_action_url), "")

    @property
    def headline(self) -> str:
        return {"succeeded": "Payment complete", "partially_succeeded": "Part of your order was paid",
                "failed": "Payment failed", "expired": "This payment page has expired"}.get(
            self.status, "Payment in progress")

    @property
    def summary(self) -> str:
        if self.status == "succeeded":
            return "Every seller was paid."
        if self.status == "partially_succeeded":
            return ("Some sellers were paid and some were not. You were charged only for the sellers marked "
                    "Paid; the others were not charged.")
        if self.status == "failed":
            return "No seller was paid and nothing was charged to your card."
        if self.status == "expired":
            return "Nothing was charged. Return to the shop to start again."
        return "Your payment is in progress."

    @property
    def message(self) -> str:
        if self.status == "open":
            return ""
        if self.next_action_url:
            return "Your bank asks you to confirm this payment."
        waiting = sum(o.outcome == "processing" for o in self.orders)
        return self.summary if not waiting else f"Paying {len(self.orders)} seller(s)… {waiting} still in progress."


def checkout_session_get(*, client: ApiClient, checkout_session_id: str) -> CheckoutSession | None:
    return CheckoutSession.objects.filter(client=client, pk=checkout_session_id).select_related("payment_event").first()


def checkout_session_view(*, checkout_session_id: str) -> CheckoutSessionView | None:
    """The hosted page's view of a session (the buyer's, so not scoped to an API client: the
    session's id is the capability): each seller's items and amounts and, once paid, its order."""
    session = CheckoutSession.objects.filter(pk=checkout_session_id).select_related("payment_event").first()
    if session is None:
        return None
    names = dict(Seller.objects.filter(pk__in=[o["seller"] for o in session.orders]).values_list("id", "name"))
    placed = {}
    if session.payment_event_id:
        placed = {o.seller_id: o for o in PaymentOrder.objects.filter(payment_event_id=session.payment_event_id)}
    orders = []
    for spec in session.orders:
        order = placed.get(spec["seller"])
        state = order.state if order else "open"
        outcome = (order.state if order and order.is_terminal else "processing") if order else "open"
        orders.append(CheckoutOrderView(
            seller_id=spec["seller"], seller_name=names.get(spec["seller"], spec["seller"]), amount=spec["amount"],
            currency=spec["currency"], amount_display=format_money(spec["amount"], spec["currency"]),
            items=[CheckoutItemView(i["name"], i["quantity"],
                                    format_money(i["quantity"] * i["amount"], spec["currency"]))
                   for i in spec.get("items") or []],
            state=state, outcome=outcome,
            state_label=_STATE_LABELS.get(state, "Processing…") if order else "",
            message=_buyer_message(order) if order else "",
            next_action_url=order.next_action_url if order and state == PaymentOrderState.REQUIRES_ACTION else ""))
    if session.payment_event_id:
        status = session.payment_event.state
    else:
        status = "expired" if session.expires_at <= timezone.now() else "open"
    return CheckoutSessionView(session=session, status=status, orders=orders)
