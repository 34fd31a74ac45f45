"""Payments' tables, one module per concern: orders (sellers, payment events and orders, checkout sessions),
refunds (and suspected double charges), exchange (the PSP's webhook inbox, merchants' outbox, reconciliation's
view)."""
from payments.models.exchange import (
    MerchantEvent,
    SettleableOrder,
    WebhookEvent,
)
from payments.models.orders import (
    OPEN_STATES,
    TERMINAL_STATES,
    CheckoutSession,
    PaymentEvent,
    PaymentEventState,
    PaymentEventTransition,
    PaymentOrder,
    PaymentOrderState,
    PaymentOrderTransition,
    PSPCustomer,
    Seller,
)
from payments.models.refunds import (
    Refund,
    RefundState,
    RefundTransition,
    SuspectedDoubleCharge,
)

__all__ = [
    "CheckoutSession", "MerchantEvent", "OPEN_STATES", "PSPCustomer", "PaymentEvent", "PaymentEventState",
    "PaymentEventTransition", "PaymentOrder", "PaymentOrderState", "PaymentOrderTransition", "Refund",
    "RefundState", "RefundTransition", "Seller", "SettleableOrder", "SuspectedDoubleCharge", "TERMINAL_STATES",
    "WebhookEvent",
]
