"""``POST /webhooks/psp``: the PSP's signed webhooks. Not an API-key endpoint: the signature is the auth.

Answers: 200 once an event is stored and processed (or ignored: not one of ours); 400 in the
error shape for a forged, stale, future-dated or malformed delivery (nothing stored); 500 in the
error shape when processing failed, so the PSP delivers it again (the inbox row keeps the error,
and a redelivery runs it again); 405 for any other method."""
import logging

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from core.errors import error_body
from core.views import webhook_answer, webhook_post_only
from payments import services
from payments.models import WebhookEvent
from payments.psp.base import WebhookSignatureError
from payments.services.webhooks import WebhookEventMalformed

logger = logging.getLogger(__name__)

# A stored event in these states is run again when the PSP sends it again.
_RUN_AGAIN = (WebhookEvent.Status.RECEIVED, WebhookEvent.Status.FAILED)


@csrf_exempt
@webhook_post_only
def psp_webhook(request):
    signature = request.headers.get("Stripe-Signature", "")
    try:
        event, created = services.webhook_event_receive(payload=request.body, signature=signature)
    except WebhookSignatureError as exc:
        logger.warning("event=webhook_refused reason=%s", exc)
        return JsonResponse(error_body(error_type="invalid_request_error", code="invalid_signature",
                                       message="Webhook signature or timestamp is not valid."), status=400)
    except WebhookEventMalformed as exc:
        logger.warning("event=webhook_malformed param=%s reason=%s", exc.param, exc)
        return JsonResponse(error_body(error_type="invalid_request_error", code="malformed_event",
                                       message=str(exc), param=exc.param), status=400)
    if created or event.status in _RUN_AGAIN:
        status = services.webhook_event_process(event_id=event.id)
    else:
        status = event.status
    return webhook_answer(event, created, status)
