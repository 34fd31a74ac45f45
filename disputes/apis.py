"""HTTP API of disputes (read-only: the PSP and the bank decide them): one view per operation."""
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from core.pagination import CreatedCursorPagination
from core.schema import PAGINATION_PARAMETERS, RETRY_AFTER_HEADER, error_responses, paginated
from payments import selectors as payment_selectors
from payments.apis import ApiView

from . import selectors
from .exceptions import DisputeNotFound
from .serializers import DisputeOutput


class DisputeDetailApi(ApiView):
    @extend_schema(responses={200: DisputeOutput, **error_responses(404)}, parameters=[RETRY_AFTER_HEADER],
                   operation_id="disputes_retrieve")
    def get(self, request, dispute_id: str):
        """One dispute on one of your orders: its state, the money taken from the seller and given back."""
        dispute = selectors.dispute_get_for_client(client=request.user, dispute_id=dispute_id)
        if dispute is None:
            raise DisputeNotFound(param="id")
        return Response(DisputeOutput(dispute).data)


class SellerDisputeListApi(ApiView):
    @extend_schema(responses={200: paginated("Dispute", DisputeOutput), **error_responses(404)},
                   parameters=PAGINATION_PARAMETERS, operation_id="sellers_disputes_list")
    def get(self, request, seller_id: str):
        """The seller's disputes, newest first."""
        if payment_selectors.seller_get(client=request.user, seller_id=seller_id) is None:
            raise DisputeNotFound("No such seller.", param="seller")
        paginator = CreatedCursorPagination()
        page = paginator.paginate_queryset(selectors.seller_disputes(client=request.user, seller_id=seller_id),
                                           request, view=self)
        return paginator.get_paginated_response(DisputeOutput(page, many=True).data)
