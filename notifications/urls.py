from django.urls import path

from notifications import apis

urlpatterns = [
    path("webhook-endpoints", apis.WebhookEndpointListCreateApi.as_view(), name="webhook-endpoints"),
    path("webhook-endpoints/<str:endpoint_id>", apis.WebhookEndpointDetailApi.as_view(),
         name="webhook-endpoint-detail"),
]
