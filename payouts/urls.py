from django.urls import path

from payouts import apis

urlpatterns = [
    path("sellers/<str:seller_id>/payout-account", apis.PayoutAccountApi.as_view(), name="seller-payout-account"),
    path("sellers/<str:seller_id>/balance", apis.SellerBalanceApi.as_view(), name="seller-balance"),
    path("sellers/<str:seller_id>/movements", apis.SellerMovementListApi.as_view(), name="seller-movements"),
    path("sellers/<str:seller_id>/payouts", apis.SellerPayoutListApi.as_view(), name="seller-payouts"),
    path("payouts/<str:payout_id>", apis.PayoutDetailApi.as_view(), name="payout-detail"),
]
