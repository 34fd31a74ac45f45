from django.urls import path

from disputes import apis

urlpatterns = [
    path("disputes/<str:dispute_id>", apis.DisputeDetailApi.as_view(), name="dispute-detail"),
    path("sellers/<str:seller_id>/disputes", apis.SellerDisputeListApi.as_view(), name="seller-disputes"),
]
