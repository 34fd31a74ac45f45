from django.urls import path

from payments import apis

urlpatterns = [
    path("sellers", apis.SellerListCreateApi.as_view(), name="sellers"),
    path("sellers/<str:seller_id>", apis.SellerDetailApi.as_view(), name="seller-detail"),
    path("checkouts", apis.CheckoutListCreateApi.as_view(), name="checkouts"),
    path("checkouts/<str:payment_event_id>", apis.CheckoutDetailApi.as_view(), name="checkout-detail"),
    path("payment-orders/<str:payment_order_id>", apis.PaymentOrderDetailApi.as_view(),
         name="payment-order-detail"),
    path("payment-orders/<str:payment_order_id>/refunds", apis.RefundCreateApi.as_view(), name="refunds"),
    path("refunds/<str:refund_id>", apis.RefundDetailApi.as_view(), name="refund-detail"),
    path("checkout-sessions", apis.CheckoutSessionCreateApi.as_view(), name="checkout-sessions"),
    path("checkout-sessions/<str:checkout_session_id>", apis.CheckoutSessionDetailApi.as_view(),
         name="checkout-session-detail"),
]
