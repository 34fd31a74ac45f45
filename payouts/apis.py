"""HTTP API of money out: one view per operation, thin callers of services and selectors."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from core.exceptions import Conflict, NotFound
from core.pagination import CreatedCursorPagination
from core.schema import (
    RETRY_AFTER_HEADER,
    WRITE_ERRORS,
    error_responses,
    idempotent_write,
    list_schema,
    retrieve_schema,
)
from core.views import ApiView, found, idempotent_response, paginated_response, validated
from payouts import selectors, services
from payouts.exceptions import PayoutAccountNotFound, SellerNotFound
from payouts.serializers import (
    BalanceOutput,
    BalanceQuery,
    MovementOutput,
    PayoutAccountInput,
    PayoutAccountOutput,
    PayoutOutput,
)


class PayoutAccountApi(ApiView):
    @extend_schema(request=PayoutAccountInput,
                   responses={201: PayoutAccountOutput, 200: PayoutAccountOutput,
                              **error_responses(404, 409, 422, *WRITE_ERRORS)},
                   parameters=idempotent_write(required=True), operation_id="sellers_payout_account_set")
    def post(self, request, seller_id: str):
        """Open the seller's payout account at the PSP (201), or replace its bank account (200)."""
        data = validated(PayoutAccountInput, request)
        opened = None
        if not selectors.idempotency_answer_expected(client=request.user, key=request.headers.get("Idempotency-Key"),
                                                     method=request.method, path=request.path,
                                                     body=request._request.body):
            # The PSP first, outside any transaction (its own key makes a second call harmless), then the
            # idempotent write of what it said.
            opened = services.payout_account_connect(client=request.user, seller_id=seller_id,
                                                     bank_token=data["external_account"], country=data["country"],
                                                     email=data["email"])

        def save():
            if opened is None:  # the key's record went (expired) between the look and the claim
                raise Conflict("Send the request again.", code="idempotency_key_expired")
            account, created = services.payout_account_save(opened=opened, actor=f"api_client:{request.user.id}")
            return (status.HTTP_201_CREATED if created else status.HTTP_200_OK), PayoutAccountOutput(account).data

        return idempotent_response(request, save)

    @retrieve_schema(PayoutAccountOutput, "sellers_payout_account_retrieve")
    def get(self, request, seller_id: str):
        account = found(selectors.payout_account_get(client=request.user, seller_id=seller_id),
                        PayoutAccountNotFound(param="seller"))
        return Response(PayoutAccountOutput(account).data)


class SellerBalanceApi(ApiView):
    @extend_schema(responses={200: BalanceOutput, **error_responses(404)},
                   parameters=[OpenApiParameter("as_of", OpenApiTypes.DATETIME, description=(
                       "A past moment: the balance as it was then (from the movements written by that moment).")),
                       RETRY_AFTER_HEADER],
                   operation_id="sellers_balance_retrieve")
    def get(self, request, seller_id: str):
        """The seller's balance per currency: available to pay out, pending (captures in their hold) and
        reserved (the rolling reserve), now or as of a past moment."""
        query = BalanceQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        as_of = query.validated_data.get("as_of")
        buckets = found(selectors.seller_balance(client=request.user, seller_id=seller_id, as_of=as_of),
                        SellerNotFound(param="seller"))
        return Response(BalanceOutput.of(seller_id=seller_id, as_of=as_of, buckets=buckets))


class SellerPayoutListApi(ApiView):
    @list_schema("Payout", PayoutOutput, "sellers_payouts_list", 404)
    def get(self, request, seller_id: str):
        """The seller's payouts, newest first."""
        if not selectors.seller_visible(client=request.user, seller_id=seller_id):
            raise SellerNotFound(param="seller")
        return paginated_response(request, self, selectors.payout_list(client=request.user, seller_id=seller_id),
                                  PayoutOutput)


class MovementCursorPagination(CreatedCursorPagination):
    ordering = ("-created_at", "-id")  # the movements of one transaction share their moment


class SellerMovementListApi(ApiView):
    @list_schema("Movement", MovementOutput, "sellers_movements_list", 404)
    def get(self, request, seller_id: str):
        """The seller's balance movements in every currency, newest first: each capture credited, refund and
        dispute debited, payout taken out (or given back when it failed) and negative balance written off,
        naming the object behind it."""
        movements = found(selectors.seller_movements(client=request.user, seller_id=seller_id),
                          SellerNotFound(param="seller"))
        paginator = MovementCursorPagination()
        page = paginator.paginate_queryset(movements, request, view=self)
        return paginator.get_paginated_response(MovementOutput(selectors.movement_lines(page), many=True).data)


class PayoutDetailApi(ApiView):
    @retrieve_schema(PayoutOutput, "payouts_retrieve")
    def get(self, request, payout_id: str):
        """One payout: pending, in_transit, then paid or failed (dead_letter: an operator decides)."""
        payout = found(selectors.payout_get(client=request.user, payout_id=payout_id),
                       NotFound("No such payout.", param="id"))
        return Response(PayoutOutput(payout).data)
