from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.apis import PingApi
from core.health import health
from payments.webhooks import psp_webhook
from payouts.webhooks import psp_connect_webhook

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/ping", PingApi.as_view(), name="ping"),
    path("api/v1/", include("payments.urls")),
    path("api/v1/", include("notifications.urls")),
    path("api/v1/", include("payouts.urls")),
    path("api/v1/", include("disputes.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("webhooks/psp", psp_webhook, name="psp-webhook"),
    path("webhooks/psp/connect", psp_connect_webhook, name="psp-connect-webhook"),
    path("pay/", include("payments.page_urls")),  # the buyer's pages (hosted payment page, 3-D Secure return)
    path("shop/", include("storefront.urls")),  # the demo shop: a merchant of ours, through the API only
    path("health", health, name="health"),
]

handler404 = "core.errors.handler404"
handler500 = "core.errors.handler500"
