"""Reads of payments, one module per concern. A client sees only its own objects."""
from payments.selectors.checkout_pages import (
    CheckoutItemView,
    CheckoutOrderView,
    CheckoutSessionView,
    checkout_session_get,
    checkout_session_view,
)
from payments.selectors.orders import (
    FAILED_ORDER_STATE,
    OPEN_ORDER_STATES,
    SETTLEABLE_ORDER_VIEW,
    SettleableOrder,
    SettledObject,
    attention_counts,
    order_totals_by_state,
    order_volumes_since,
    orders_with_refunds_above_capture,
    payment_event_get,
    payment_event_list,
    payment_order_by_psp_reference,
    payment_order_failure_codes,
    payment_order_get,
    refund_get,
    refund_list,
    refunds_by_psp_reference,
    reversed_refund_ids,
    seller_get,
    seller_ids_named,
    seller_list,
    seller_names,
    settleable_order_view,
    settleable_orders,
    succeeded_order_ids,
    succeeded_refund_ids,
    webhook_events_unfinished,
)
from payments.selectors.search import (
    amount_search_q,
    payment_events_search,
    payment_orders_in_amount_range,
    payment_orders_search,
)
from payments.selectors.timeline import (
    TimelineRow,
    payment_event_timeline,
    payment_orders_timeline,
    timeline_sorted,
)

__all__ = [
    "CheckoutItemView", "CheckoutOrderView", "CheckoutSessionView", "FAILED_ORDER_STATE", "OPEN_ORDER_STATES",
    "SETTLEABLE_ORDER_VIEW", "SettleableOrder", "SettledObject", "TimelineRow", "amount_search_q",
    "attention_counts", "checkout_session_get", "checkout_session_view", "order_totals_by_state",
    "order_volumes_since", "orders_with_refunds_above_capture", "payment_event_get", "payment_event_list",
    "payment_event_timeline", "payment_events_search", "payment_order_by_psp_reference",
    "payment_order_failure_codes", "payment_order_get", "payment_orders_in_amount_range", "payment_orders_search",
    "payment_orders_timeline", "refund_get", "refund_list", "refunds_by_psp_reference", "seller_get",
    "seller_ids_named", "seller_list", "seller_names", "settleable_order_view", "settleable_orders",
    "reversed_refund_ids", "succeeded_order_ids", "succeeded_refund_ids", "timeline_sorted",
    "webhook_events_unfinished",
]
