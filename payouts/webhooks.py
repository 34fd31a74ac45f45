"""``POST /webhooks/psp/connect``: the PSP's Connect webhooks (the connected accounts' events: payout.paid,
payout.failed, ...), signed with the Connect endpoint's own secret. Not an API-key endpoint.

Answers as ``/webhooks/psp`` does: 200 once stored and processed (or ignored: not one of ours); 400 in the
error shape for a forged, stale, future-dated or malformed delivery (nothing stored); 500 in the error
shape when processing failed, so the PSP sends it again; 405 for any other method."""
import logging
import re
import time

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from core.errors import error_body
from core.views import webhook_answer, webhook_post_only
from payments.psp.base import WebhookSignatureError
from payouts import services
from payouts.models import PayoutWebhookEvent
from payouts.psp import get_payout_provider

logger = logging.getLogger(__name__)
_RUN_AGAIN = (PayoutWebhookEvent.Status.RECEIVED, PayoutWebhookEvent.Status.FAILED)
_PRINTABLE = re.compile(r"[\x21-\x7e]{1,100}")


def _refused(code: str, message: str, param: str | None = None) -> JsonResponse:
    return JsonResponse(error_body(error_type="invalid_request_error", code=code, message=message, param=param),
                        status=400)


def _future_timestamp(signature: str) -> bool:
    """The SDK refuses a stale ``t=`` but not one in the future (signed ahead of time)."""
    stamps = [p.split("=", 1)[1] for p in (signature or "").split(",") if p.strip().startswith("t=")]
    return any(s.strip().isdigit() and int(s) > time.time() + settings.PSP_WEBHOOK_TOLERANCE_SECONDS for s in stamps)


def _malformed(event) -> tuple[str, str | None] | None:
    if not isinstance(event, dict):
        return "The event must be a JSON object.", None
    if not isinstance(event.get("id"), str) or not _PRINTABLE.fullmatch(event["id"]):
        return "The event id must be 1 to 100 printable ASCII characters.", "id"
    if not isinstance(event.get("type"), str) or not 0 < len(event["type"]) <= 100:
        return "The event type must be a string of 1 to 100 characters.", "type"
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        return "The event's data.object must be an object.", "data.object"
    if not isinstance(data["object"].get("id", ""), str) or not isinstance(event.get("account") or "", str):
        return "The object's id and the event's account must be strings.", "data.object.id"
    return None


@csrf_exempt
@webhook_post_only
def psp_connect_webhook(request):
    signature = request.headers.get("Stripe-Signature", "")
    try:
        if _future_timestamp(signature):
            raise WebhookSignatureError("timestamp in the future beyond the tolerance")
        event = get_payout_provider().verify_webhook(request.body, signature)
    except WebhookSignatureError as exc:
        logger.warning("event=connect_webhook_refused reason=%s", exc)
        return _refused("invalid_signature", "Webhook signature or timestamp is not valid.")
    except (ValueError, TypeError, AttributeError, KeyError, RecursionError):
        return _refused("malformed_event", "The event must be a JSON object.")
    problem = _malformed(event)
    if problem:
        return _refused("malformed_event", problem[0], problem[1])
    stored, created = services.payout_webhook_receive(event=event)
    status = services.payout_webhook_process(event_id=stored.id) if created or stored.status in _RUN_AGAIN \
        else stored.status
    return webhook_answer(stored, created, status)
