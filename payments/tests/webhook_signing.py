"""Sign webhook payloads exactly as Stripe (and our sandbox) do, for tests."""
import hashlib
import hmac
import json
import time


def signed(event: dict, *, secret: str = "whsec_sandbox_secret", timestamp: int | None = None) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={t},v1={mac}"


def payment_intent_event(event_id: str, order, status: str, *, pi_id: str = "pi_test_1") -> dict:
    intent = {"id": pi_id, "object": "payment_intent", "amount": order.amount, "currency": order.currency,
              "status": status, "metadata": {"payment_order_id": order.id}, "last_payment_error": None}
    if status == "requires_payment_method":
        intent["last_payment_error"] = {"code": "card_declined", "decline_code": "generic_decline",
                                        "message": "Your card was declined."}
    kind = {"succeeded": "payment_intent.succeeded", "processing": "payment_intent.processing",
            "requires_payment_method": "payment_intent.payment_failed"}[status]
    return {"id": event_id, "object": "event", "type": kind, "created": int(time.time()),
            "data": {"object": intent}}


def deliver(payload: bytes, signature: str | None):
    """POST ``payload`` to our PSP webhook endpoint, with ``Stripe-Signature`` unless it is ``None``."""
    from django.test import Client

    headers = {"HTTP_STRIPE_SIGNATURE": signature} if signature is not None else {}
    return Client().post("/webhooks/psp", payload, content_type="application/json", **headers)
