from django.urls import path

from storefront import views

app_name = "storefront"

urlpatterns = [
    path("", views.shop, name="shop"),
    path("cart/<slug:sku>/add", views.cart_add, name="cart-add"),
    path("cart/<slug:sku>/remove", views.cart_remove, name="cart-remove"),
    path("buy", views.buy, name="buy"),
    path("thanks", views.thanks, name="thanks"),
    path("orders/<str:session>/status", views.order_status, name="order-status"),
    path("webhooks", views.webhook, name="webhook"),
]
