"""HTTP API of disputes (read-only: the PSP and the bank decide them): one view per operation."""
from rest_framework.response import Response

from core.schema import list_schema, retrieve_schema
from core.views import ApiView, found, paginated_response
from payments import selectors as payment_selectors

from . import selectors
from .exceptions import DisputeNotFound
from .serializers import DisputeOutput


class DisputeDetailApi(ApiView):
    @retrieve_schema(DisputeOutput, "disputes_retrieve")
    def get(self, request, dispute_id: str):
        """One dispute on one of your orders: its state, the money taken from the seller and given back."""
        dispute = found(selectors.dispute_get_for_client(client=request.user, dispute_id=dispute_id),
                        DisputeNotFound(param="id"))
        return Response(DisputeOutput(dispute).data)


class SellerDisputeListApi(ApiView):
    @list_schema("Dispute", DisputeOutput, "sellers_disputes_list", 404)
    def get(self, request, seller_id: str):
        """The seller's disputes, newest first."""
        if payment_selectors.seller_get(client=request.user, seller_id=seller_id) is None:
            raise DisputeNotFound("No such seller.", param="seller")
        return paginated_response(request, self, selectors.seller_disputes(client=request.user, seller_id=seller_id),
                                  DisputeOutput)
