"""The buyer's pages: what a browser reaches (no API key, HTML, redirects). Thin callers of services."""
from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from core.errors import error_body
from core.exceptions import DomainError, NotFound
from payments import selectors, services
from payments.serializers import CheckoutConfirmInput
from payments.services.authentication import CheckoutNotFound


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query string (kept as given otherwise)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))


def message(request, *, title: str, text: str, status: int = 200):
    return render(request, "pay/message.html", {"title": title, "text": text}, status=status)


@csrf_exempt  # GET only: any other method is a plain 405, not CSRF's 403
@require_GET
def buyer_return(request, payment_event_id: str):
    """The PSP's ``return_url`` after 3-D Secure. Its query string (``payment_intent``,
    ``redirect_status``) is never read: what happened is asked of the PSP."""
    try:
        back = services.payment_event_buyer_returned(payment_event_id=payment_event_id)
    except CheckoutNotFound:
        return message(request, title="Payment not found", status=404,
                       text="This payment link is not valid. Nothing was charged through it.")
    if back.next_action_url:  # another seller's order asks for its own authentication
        return HttpResponseRedirect(back.next_action_url)
    if back.return_url:
        return HttpResponseRedirect(with_query(back.return_url, payment_event=back.payment_event_id))
    return message(request, title="Authentication complete", text="You can close this page.")


# --- The hosted payment page ---------------------------------------------------------------------
def _session_redirect(view) -> str:
    """Where a decided session sends the buyer: the shop's success_url when every seller was paid,
    else our outcome page, which says which sellers' orders went through."""
    if view.status == "succeeded":
        return view.session.success_url.replace("{CHECKOUT_SESSION_ID}", view.session.id)
    return reverse("pay:session-result", args=[view.session.id])


def _session_or_404(request, checkout_session_id: str):
    view = selectors.checkout_session_view(checkout_session_id=checkout_session_id)
    if view is None:
        return None, message(request, title="Payment page not found", status=404,
                             text="This payment link is not valid. Nothing was charged through it.")
    return view, None


def _status_body(view) -> dict:
    return {
        "id": view.session.id, "status": view.status, "message": view.message,
        "next_action_url": view.next_action_url,
        "redirect": _session_redirect(view) if view.decided else "",
        "orders": [{"seller_id": o.seller_id, "seller_name": o.seller_name, "state": o.state,
                    "state_label": o.state_label, "message": o.message} for o in view.orders],
    }


@require_GET
@ensure_csrf_cookie
def checkout_page(request, checkout_session_id: str):
    """The hosted payment page: each seller's items and amounts and the PSP's card field. Opened
    again mid-payment (a refresh, the back button, another tab), it follows the payment already made."""
    view, missing = _session_or_404(request, checkout_session_id)
    if missing:
        return missing
    if view.decided:
        return HttpResponseRedirect(_session_redirect(view))
    if view.status == "expired":
        return render(request, "pay/result.html", {"view": view}, status=410)
    psp_js_url = settings.PSP_JS_URL or (settings.PSP_PUBLIC_URL or settings.PSP_API_BASE).rstrip("/") + \
        "/js/v1/sandbox.js"
    response = render(request, "pay/checkout.html", {
        "view": view, "publishable_key": settings.PSP_PUBLISHABLE_KEY, "psp_js_url": psp_js_url})
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def checkout_confirm(request, checkout_session_id: str):
    """The page pays with the PSP's token (JSON ``{"payment_method": "pm_..."}``, CSRF-protected)."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = None
    serializer = CheckoutConfirmInput(data=body if isinstance(body, dict) else {})
    if not serializer.is_valid():
        param, problem = next(iter(serializer.errors.items()))
        return JsonResponse(error_body(error_type="invalid_request_error", code=str(problem[0].code),
                                       message=str(problem[0]), param=param), status=400)
    try:
        services.checkout_session_confirm(session_id=checkout_session_id,
                                          payment_method=serializer.validated_data["payment_method"],
                                          public_url=request.build_absolute_uri("/"))
    except DomainError as exc:
        status = 404 if isinstance(exc, NotFound) else 400
        return JsonResponse(error_body(error_type="invalid_request_error", code=exc.code, message=exc.message,
                                       param=exc.param), status=status)
    return JsonResponse(_status_body(selectors.checkout_session_view(checkout_session_id=checkout_session_id)))


@require_GET
def checkout_status(request, checkout_session_id: str):
    view = selectors.checkout_session_view(checkout_session_id=checkout_session_id)
    if view is None:
        return JsonResponse(error_body(error_type="invalid_request_error", code="resource_missing",
                                       message="No such checkout session."), status=404)
    response = JsonResponse(_status_body(view))
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def checkout_result(request, checkout_session_id: str):
    """The outcome, seller by seller: which orders went through and which did not."""
    view, missing = _session_or_404(request, checkout_session_id)
    if missing:
        return missing
    if not view.started:
        return HttpResponseRedirect(reverse("pay:session", args=[view.session.id]))
    return render(request, "pay/result.html", {"view": view})


@require_GET
def checkout_cancel(request, checkout_session_id: str):
    """Back to the shop without paying; once a payment has started there is nothing to cancel."""
    view, missing = _session_or_404(request, checkout_session_id)
    if missing:
        return missing
    if view.started:
        return HttpResponseRedirect(reverse("pay:session", args=[view.session.id]))
    return HttpResponseRedirect(view.session.cancel_url.replace("{CHECKOUT_SESSION_ID}", view.session.id))
