"""The sandbox's own ``/_sandbox/...`` endpoints: health, config, reset, settlements and balance, the charges and
events it keeps, disputes, a payout returned by the bank, a refund failing after it succeeded, the 3-D Secure
challenge and webhook resends."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from . import __version__, connect, context, disputes, objects, refunds, routes, settlement
from .behaviour import ConfigError
from .errors import ApiError

if TYPE_CHECKING:
    from .server import Sandbox

_RESEND = re.compile(r"^/_sandbox/events/([A-Za-z0-9_]+)/resend$")
_CHALLENGE = re.compile(r"^/_sandbox/3ds/([A-Za-z0-9_]+)$")
_REFUND_FAIL = re.compile(r"^/_sandbox/refunds/([A-Za-z0-9_]+)/fail$")
#: ``(status, body, headers, content type)``, as ``Handler._send`` takes them.
Answer = tuple[int, Any, dict[str, str] | None, str]


def answer(status: int, body: Any, headers: dict[str, str] | None = None,
           content_type: str = "application/json") -> Answer:
    return status, body, headers, content_type


def route(sb: Sandbox, method: str, path: str, query: str, body: bytes) -> Answer:
    """The answer to a ``/_sandbox/...`` request."""
    if path == "/_sandbox/health" and method == "GET":
        return answer(200, {"ok": True, "version": __version__})
    if path == "/_sandbox/config" and method == "GET":
        return answer(200, sb.config.snapshot())
    if path == "/_sandbox/config" and method == "POST":
        try:
            update = json.loads(body or b"{}")
            return answer(200, sb.config.update(update))
        except (ValueError, ConfigError) as exc:
            return answer(400, {"error": str(exc)})
    if path == "/_sandbox/reset" and method == "POST":
        sb.reset()
        return answer(200, {"ok": True})
    if path == "/_sandbox/settlements" and method == "POST":
        return answer(*settlement.handle(sb.store, sb.config.snapshot(), body))
    if path == "/_sandbox/balance" and method == "GET":
        return answer(*settlement.handle_balance(sb.store, sb.config.snapshot(), dict(parse_qsl(query))))
    if (connect_answer := connect.sandbox_route(sb, method, path, body)) is not None:
        return answer(*connect_answer)
    if path == "/_sandbox/charges" and method == "GET":
        return answer(200, {**sb.api.charges_report(), "faults": sb.fault_counts()})
    if (dispute_answer := disputes.sandbox_route(sb.api, method, path, body)) is not None:
        return answer(*dispute_answer)
    if path == "/_sandbox/events" and method == "GET":
        event_type = dict(parse_qsl(query)).get("type")
        events = []
        for e in sb.store.list_events(event_type):
            payload = json.loads(e.pop("payload"))
            e.pop("seq", None)
            events.append({**e, "event": payload})
        return answer(200, {"events": events})
    m = _REFUND_FAIL.match(path)
    if m and method == "POST":
        return _refund_fail(sb, m.group(1), body)
    m = _CHALLENGE.match(path)
    if m:
        return _challenge(sb, method, m.group(1), body)
    m = _RESEND.match(path)
    if m and method == "POST":
        if not sb.config.get("webhook_url"):
            return answer(400, {"error": "no webhook_url configured"})
        if not sb.dispatcher.resend(m.group(1)):
            return answer(404, {"error": f"no such event: {m.group(1)}"})
        return answer(200, {"id": m.group(1), "status": "pending"})
    return answer(404, {"error": f"unknown sandbox endpoint: {method} {path}"})


def _refund_fail(sb: Sandbox, refund_id: str, body: bytes) -> Answer:
    """``POST /_sandbox/refunds/{id}/fail`` ``{"failure_reason"?}`` (default ``expired_or_canceled_card``)."""
    try:
        params = json.loads(body or b"{}")
        if not isinstance(params, dict):
            raise ValueError
    except ValueError:
        return answer(400, {"error": "the body must be a JSON object"})
    refund = sb.store.get_refund(refund_id)
    with sb.store.transaction(), context.use(sb.api._background(refund["payment_intent"] if refund else "")):
        try:
            return answer(200, refunds.fail_succeeded(sb.store, sb.api.emit, refund_id,
                                                      str(params.get("failure_reason") or "expired_or_canceled_card")))
        except ApiError as exc:
            return answer(exc.status, exc.payload())


def _challenge(sb: Sandbox, method: str, pi_id: str, body: bytes) -> Answer:
    """The 3-D Secure challenge: a page, then ``outcome=succeed|fail`` back to ``return_url``."""
    if method == "GET":
        page = routes.challenge_page(sb.api.retrieve_payment_intent(pi_id))
        return answer(200, page, content_type="text/html; charset=utf-8")
    form = dict(parse_qsl(body.decode("utf-8", "replace")))
    if body.strip().startswith(b"{"):
        form = json.loads(body)
    outcome = form.get("outcome")
    if outcome not in ("succeed", "fail"):
        return answer(400, {"error": "outcome must be succeed or fail"})
    pi, return_url = sb.api.complete_challenge(pi_id, outcome == "succeed")
    if not return_url:
        return answer(200, {"payment_intent": objects.complete(pi)})
    query = urlencode(
        {
            "payment_intent": pi["id"],
            "payment_intent_client_secret": pi["client_secret"],
            "redirect_status": "succeeded" if pi["status"] in ("succeeded", "requires_capture") else "failed",
        }
    )
    location = return_url + ("&" if "?" in return_url else "?") + query
    return answer(302, {"redirect": location}, {"Location": location})
