from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.apis import PingApi
from core.health import health
from payments.webhooks import psp_webhook

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/ping", PingApi.as_view(), name="ping"),
    path("api/v1/", include("payments.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("webhooks/psp", psp_webhook, name="psp-webhook"),
    path("health", health, name="health"),
]

handler404 = "core.errors.handler404"
handler500 = "core.errors.handler500"
