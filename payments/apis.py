"""HTTP API: one view per operation, thin callers of services and selectors."""
from django.db import IntegrityError, transaction
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ApiError
from core.pagination import CreatedCursorPagination
from core.parsers import JSONParser
from core.schema import (
    PAGINATION_PARAMETERS,
    RETRY_AFTER_HEADER,
    WRITE_ERRORS,
    error_responses,
    idempotent_write,
    paginated,
)
from core.views import idempotent_response
from payments import selectors, services
from payments.exceptions import PaymentOrderNotFound
from payments.serializers import (
    CheckoutInput,
    CheckoutSessionInput,
    CheckoutSessionOutput,
    PaymentEventOutput,
    PaymentOrderDetailOutput,
    RefundInput,
    RefundOutput,
    SellerInput,
    SellerOutput,
)

SELLER_EXTERNAL_REFERENCE_CONSTRAINT = "seller_external_reference_unique_per_client"


class ApiView(APIView):
    # Here rather than in DEFAULT_PARSER_CLASSES: deeply nested JSON, NUL and lone surrogates are 400s.
    parser_classes = [JSONParser]


def _constraint_name(exc: IntegrityError) -> str:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) or ""


def _validated(serializer_class, request):
    request._request.body  # noqa: B018  (read the raw body first: the idempotency fingerprint needs it)
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _paginated(request, view, queryset, output_class):
    paginator = CreatedCursorPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(output_class(page, many=True).data)


class SellerListCreateApi(ApiView):
    @extend_schema(request=SellerInput, responses={201: SellerOutput, **error_responses(409, 422, *WRITE_ERRORS)},
                   parameters=idempotent_write(required=False), operation_id="sellers_create")
    def post(self, request):
        data = _validated(SellerInput, request)

        def onboard():
            try:
                with transaction.atomic():  # a savepoint: the idempotency transaction stays usable
                    seller = services.seller_onboard(client=request.user, **data)
            except IntegrityError as exc:
                if _constraint_name(exc) != SELLER_EXTERNAL_REFERENCE_CONSTRAINT:
                    raise
                raise ApiError("You already onboarded a seller with this external_reference.",
                               code="seller_external_reference_taken", param="external_reference",
                               status_code=status.HTTP_409_CONFLICT) from None
            return status.HTTP_201_CREATED, SellerOutput(seller).data

        return idempotent_response(request, onboard, key_required=False)

    @extend_schema(responses={200: paginated("Seller", SellerOutput), **error_responses()},
                   parameters=PAGINATION_PARAMETERS, operation_id="sellers_list")
    def get(self, request):
        return _paginated(request, self, selectors.seller_list(client=request.user), SellerOutput)


class SellerDetailApi(ApiView):
    @extend_schema(responses={200: SellerOutput, **error_responses(404)}, parameters=[RETRY_AFTER_HEADER],
                   operation_id="sellers_retrieve")
    def get(self, request, seller_id: str):
        seller = selectors.seller_get(client=request.user, seller_id=seller_id)
        if seller is None:
            raise ApiError("No such seller.", code="resource_missing", status_code=404, param="id")
        return Response(SellerOutput(seller).data)


class CheckoutListCreateApi(ApiView):
    @extend_schema(request=CheckoutInput,
                   responses={201: PaymentEventOutput, **error_responses(409, 422, *WRITE_ERRORS)},
                   parameters=idempotent_write(required=True), operation_id="checkouts_create")
    def post(self, request):
        data = _validated(CheckoutInput, request)

        def checkout():
            event = services.payment_event_create(
                client=request.user,
                buyer_reference=data["buyer"]["reference"],
                buyer_email=data["buyer"]["email"],
                payment_method=data["payment_method"],
                orders=[services.OrderSpec(o["seller"], o["amount"], o["currency"]) for o in data["orders"]],
                idempotency_key=request.headers.get("Idempotency-Key", ""),
                return_url=data["return_url"], public_url=request.build_absolute_uri("/"),
            )
            return status.HTTP_201_CREATED, PaymentEventOutput(event).data

        return idempotent_response(request, checkout)

    @extend_schema(responses={200: paginated("PaymentEvent", PaymentEventOutput), **error_responses()},
                   parameters=PAGINATION_PARAMETERS, operation_id="checkouts_list")
    def get(self, request):
        return _paginated(request, self, selectors.payment_event_list(client=request.user), PaymentEventOutput)


class CheckoutDetailApi(ApiView):
    @extend_schema(responses={200: PaymentEventOutput, **error_responses(404)}, parameters=[RETRY_AFTER_HEADER],
                   operation_id="checkouts_retrieve")
    def get(self, request, payment_event_id: str):
        event = selectors.payment_event_get(client=request.user, payment_event_id=payment_event_id)
        if event is None:
            raise ApiError("No such checkout.", code="resource_missing", status_code=404, param="id")
        return Response(PaymentEventOutput(event).data)


class PaymentOrderDetailApi(ApiView):
    @extend_schema(responses={200: PaymentOrderDetailOutput, **error_responses(404)}, parameters=[RETRY_AFTER_HEADER],
                   operation_id="payment_orders_retrieve")
    def get(self, request, payment_order_id: str):
        order = selectors.payment_order_get(client=request.user, payment_order_id=payment_order_id)
        if order is None:
            raise PaymentOrderNotFound(param="id")
        return Response(PaymentOrderDetailOutput(order).data)


class RefundCreateApi(ApiView):
    @extend_schema(request=RefundInput, responses={201: RefundOutput, **error_responses(404, 409, 422, *WRITE_ERRORS)},
                   parameters=idempotent_write(required=True), operation_id="refunds_create")
    def post(self, request, payment_order_id: str):
        data = _validated(RefundInput, request)

        def refund():
            created = services.refund_create(client=request.user, payment_order_id=payment_order_id,
                                             amount=data.get("amount"), reason=data["reason"],
                                             actor=f"api_client:{request.user.id}")
            return status.HTTP_201_CREATED, RefundOutput(created).data

        return idempotent_response(request, refund)

    @extend_schema(responses={200: paginated("Refund", RefundOutput), **error_responses(404)},
                   parameters=PAGINATION_PARAMETERS, operation_id="refunds_list")
    def get(self, request, payment_order_id: str):
        """A payment order's refunds, newest first."""
        if selectors.payment_order_get(client=request.user, payment_order_id=payment_order_id) is None:
            raise PaymentOrderNotFound(param="payment_order")
        return _paginated(request, self, selectors.refund_list(client=request.user, payment_order_id=payment_order_id),
                          RefundOutput)


class RefundDetailApi(ApiView):
    @extend_schema(responses={200: RefundOutput, **error_responses(404)}, parameters=[RETRY_AFTER_HEADER],
                   operation_id="refunds_retrieve")
    def get(self, request, refund_id: str):
        """A refund's state: pending until the PSP answers, then succeeded, failed or dead_letter."""
        refund = selectors.refund_get(client=request.user, refund_id=refund_id)
        if refund is None:
            raise ApiError("No such refund.", code="resource_missing", status_code=404, param="id")
        return Response(RefundOutput(refund).data)


class CheckoutSessionCreateApi(ApiView):
    @extend_schema(request=CheckoutSessionInput,
                   responses={201: CheckoutSessionOutput, **error_responses(409, 422, *WRITE_ERRORS)},
                   parameters=idempotent_write(required=True), operation_id="checkout_sessions_create")
    def post(self, request):
        """A hosted payment page for a checkout: send the buyer to its `url`."""
        data = _validated(CheckoutSessionInput, request)

        def create():
            session = services.checkout_session_create(
                client=request.user, buyer_reference=data["buyer"]["reference"], buyer_email=data["buyer"]["email"],
                orders=[services.SessionOrderSpec(o["seller"], o["amount"], o["currency"],
                                                  [services.ItemSpec(i["name"], i["quantity"], i["amount"])
                                                   for i in o.get("items", [])])
                        for o in data["orders"]],
                success_url=data["success_url"], cancel_url=data["cancel_url"],
                idempotency_key=request.headers.get("Idempotency-Key", ""))
            return status.HTTP_201_CREATED, CheckoutSessionOutput(session, context={"request": request}).data

        return idempotent_response(request, create)


class CheckoutSessionDetailApi(ApiView):
    @extend_schema(responses={200: CheckoutSessionOutput, **error_responses(404)}, parameters=[RETRY_AFTER_HEADER],
                   operation_id="checkout_sessions_retrieve")
    def get(self, request, checkout_session_id: str):
        session = selectors.checkout_session_get(client=request.user, checkout_session_id=checkout_session_id)
        if session is None:
            raise ApiError("No such checkout session.", code="resource_missing", status_code=404, param="id")
        return Response(CheckoutSessionOutput(session, context={"request": request}).data)
