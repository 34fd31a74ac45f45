"""HTTP API: one view per operation, thin callers of services and selectors."""
from django.db import IntegrityError, transaction
from rest_framework import status
from rest_framework.response import Response

from core.errors import ApiError
from core.exceptions import NotFound
from core.schema import (
    create_schema,
    list_schema,
    retrieve_schema,
)
from core.services import Answer
from core.views import ApiView, found, idempotency_key, idempotent_response, paginated_response, validated
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
    checkout_output,
)

SELLER_EXTERNAL_REFERENCE_CONSTRAINT = "seller_external_reference_unique_per_client"


def _constraint_name(exc: IntegrityError) -> str:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) or ""


class SellerListCreateApi(ApiView):
    @create_schema(SellerInput, SellerOutput, "sellers_create", 409, 422, key_required=False)
    def post(self, request):
        data = validated(SellerInput, request)

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

    @list_schema("Seller", SellerOutput, "sellers_list")
    def get(self, request):
        return paginated_response(request, self, selectors.seller_list(client=request.user), SellerOutput)


class SellerDetailApi(ApiView):
    @retrieve_schema(SellerOutput, "sellers_retrieve")
    def get(self, request, seller_id: str):
        seller = found(selectors.seller_get(client=request.user, seller_id=seller_id),
                       NotFound("No such seller.", param="id"))
        return Response(SellerOutput(seller).data)


class CheckoutListCreateApi(ApiView):
    @create_schema(CheckoutInput, PaymentEventOutput, "checkouts_create", 409, 422, key_required=True)
    def post(self, request):
        data = validated(CheckoutInput, request)

        def checkout() -> Answer:
            # The response is known before the rows are written: it is stored by the key's claim (one statement
            # fewer), then the rows are written (a refused seller: nothing written, the claim rolled back).
            made = services.payment_event_make(
                client=request.user,
                buyer_reference=data["buyer"]["reference"],
                buyer_email=data["buyer"]["email"],
                payment_method=data["payment_method"],
                orders=[services.OrderSpec(o["seller"], o["amount"], o["currency"]) for o in data["orders"]],
                idempotency_key=idempotency_key(request) or "",
                return_url=data["return_url"],
                # our address as the buyer reaches it: only a buyer who is present goes back to it
                public_url=request.build_absolute_uri("/") if data["return_url"] else "",
            )
            # The rows written by the claim's own statement, committed on its own; or, if it claims nothing, by
            # ``write`` in the transaction that tells a replay, a twin or a refused seller apart.
            return Answer(status.HTTP_201_CREATED, checkout_output(made),  # PaymentEventOutput's, from its values
                          lambda: services.payment_event_insert(checkout=made), services.checkout_rows(made))

        return idempotent_response(request, prepare=checkout)

    @list_schema("PaymentEvent", PaymentEventOutput, "checkouts_list")
    def get(self, request):
        return paginated_response(request, self, selectors.payment_event_list(client=request.user), PaymentEventOutput)


class CheckoutDetailApi(ApiView):
    @retrieve_schema(PaymentEventOutput, "checkouts_retrieve")
    def get(self, request, payment_event_id: str):
        event = found(selectors.payment_event_get(client=request.user, payment_event_id=payment_event_id),
                      NotFound("No such checkout.", param="id"))
        return Response(PaymentEventOutput(event).data)


class PaymentOrderDetailApi(ApiView):
    @retrieve_schema(PaymentOrderDetailOutput, "payment_orders_retrieve")
    def get(self, request, payment_order_id: str):
        order = found(selectors.payment_order_get(client=request.user, payment_order_id=payment_order_id),
                      PaymentOrderNotFound(param="id"))
        return Response(PaymentOrderDetailOutput(order).data)


class RefundCreateApi(ApiView):
    @create_schema(RefundInput, RefundOutput, "refunds_create", 404, 409, 422, key_required=True)
    def post(self, request, payment_order_id: str):
        data = validated(RefundInput, request)

        def refund():
            created = services.refund_create(client=request.user, payment_order_id=payment_order_id,
                                             amount=data.get("amount"), reason=data["reason"],
                                             actor=f"api_client:{request.user.id}")
            return status.HTTP_201_CREATED, RefundOutput(created).data

        return idempotent_response(request, refund)

    @list_schema("Refund", RefundOutput, "refunds_list", 404)
    def get(self, request, payment_order_id: str):
        """A payment order's refunds, newest first."""
        if selectors.payment_order_get(client=request.user, payment_order_id=payment_order_id) is None:
            raise PaymentOrderNotFound(param="payment_order")
        refunds = selectors.refund_list(client=request.user, payment_order_id=payment_order_id)
        return paginated_response(request, self, refunds, RefundOutput)


class RefundDetailApi(ApiView):
    @retrieve_schema(RefundOutput, "refunds_retrieve")
    def get(self, request, refund_id: str):
        """A refund's state: pending until the PSP answers, then succeeded, failed or dead_letter."""
        refund = found(selectors.refund_get(client=request.user, refund_id=refund_id),
                       NotFound("No such refund.", param="id"))
        return Response(RefundOutput(refund).data)


class CheckoutSessionCreateApi(ApiView):
    @create_schema(CheckoutSessionInput, CheckoutSessionOutput, "checkout_sessions_create", 409, 422, key_required=True)
    def post(self, request):
        """A hosted payment page for a checkout: send the buyer to its `url`."""
        data = validated(CheckoutSessionInput, request)

        def create():
            session = services.checkout_session_create(
                client=request.user, buyer_reference=data["buyer"]["reference"], buyer_email=data["buyer"]["email"],
                orders=[services.SessionOrderSpec(o["seller"], o["amount"], o["currency"],
                                                  [services.ItemSpec(i["name"], i["quantity"], i["amount"])
                                                   for i in o.get("items", [])])
                        for o in data["orders"]],
                success_url=data["success_url"], cancel_url=data["cancel_url"],
                idempotency_key=idempotency_key(request) or "")
            return status.HTTP_201_CREATED, CheckoutSessionOutput(session, context={"request": request}).data

        return idempotent_response(request, create)


class CheckoutSessionDetailApi(ApiView):
    @retrieve_schema(CheckoutSessionOutput, "checkout_sessions_retrieve")
    def get(self, request, checkout_session_id: str):
        session = found(selectors.checkout_session_get(client=request.user, checkout_session_id=checkout_session_id),
                        NotFound("No such checkout session.", param="id"))
        return Response(CheckoutSessionOutput(session, context={"request": request}).data)
