"""Write-side business logic of payments, one module per concern."""
from payments.services.authentication import (
    payment_event_buyer_returned,
    payment_order_expire_action,
    payment_orders_expire_actions,
)
from payments.services.checkout import (
    OrderSpec,
    payment_event_create,
    payment_event_insert,
    payment_event_make,
    payment_event_write,
    seller_onboard,
)
from payments.services.checkout_sessions import (
    ItemSpec,
    SessionOrderSpec,
    checkout_session_confirm,
    checkout_session_create,
)
from payments.services.checkout_write import checkout_rows
from payments.services.customers import payment_event_prepare
from payments.services.execution import (
    payment_order_apply_result,
    payment_order_execute,
    payment_order_mark_unknown,
    payment_order_schedule_retry,
)
from payments.services.merchant_events import merchant_events_relay
from payments.services.postings import capture_posting_key, commission_for, refund_posting_key
from payments.services.recovery import (
    payment_order_replay_dead_letter,
    payment_order_resolve,
    payment_orders_redrive_stalled,
    payment_orders_resolve_unknown,
)
from payments.services.refunds import (
    payment_order_lock,
    refund_apply_result,
    refund_create,
    refund_execute,
    refund_refresh,
)
from payments.services.webhooks import webhook_event_process, webhook_event_receive

__all__ = [
    "ItemSpec", "OrderSpec", "SessionOrderSpec", "capture_posting_key", "checkout_rows", "checkout_session_confirm",
    "checkout_session_create", "commission_for", "merchant_events_relay", "payment_event_buyer_returned",
    "payment_event_create", "payment_event_insert", "payment_event_make", "payment_event_prepare",
    "payment_event_write",
    "payment_order_apply_result", "payment_order_expire_action", "payment_orders_expire_actions",
    "payment_order_execute", "payment_order_lock", "payment_order_mark_unknown", "payment_order_replay_dead_letter",
    "payment_order_resolve", "payment_order_schedule_retry", "payment_orders_redrive_stalled",
    "payment_orders_resolve_unknown", "refund_apply_result", "refund_create", "refund_execute",
    "refund_posting_key", "refund_refresh", "seller_onboard", "webhook_event_process", "webhook_event_receive",
]
