"""``POST /webhooks/psp``: the PSP's signed webhooks. Not an API-key endpoint: the signature is the auth."""
import logging

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.errors import error_body
from payments import services
from payments.psp.base import WebhookSignatureError

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def psp_webhook(request):
    signature = request.headers.get("Stripe-Signature", "")
    try:
        event, created = services.webhook_event_receive(payload=request.body, signature=signature)
    except WebhookSignatureError as exc:
        logger.warning("event=webhook_refused reason=%s", exc)
        return JsonResponse(error_body(error_type="invalid_request_error", code="invalid_signature",
                                       message="Webhook signature or timestamp is not valid."), status=400)
    status = services.webhook_event_process(event_id=event.id) if created else event.status
    return JsonResponse({"received": True, "id": event.id, "duplicate": not created, "status": status})
