"""The Stripe SDK's request headers, made once per kind of request.

``_APIRequestor.request_headers`` builds every request's headers from scratch, though all but one are the
same for every request of a kind: the ``X-Stripe-Client-User-Agent`` JSON (``json.dumps``, the Python
version asked of ``platform``), the environment scanned for thirteen AI agents' variables, and a random
``Idempotency-Key`` made for every POST even when one is given (``setdefault``'s default is made first): about
a fifth of the SDK's CPU for a payment. ``request_headers_once`` keeps the SDK's own headers per kind (method,
API mode, key, account, context, version, app info, telemetry) and sets the one that changes, the
idempotency key, as the SDK does: the one given, else a new one of the SDK's own making for a POST (and a V2
DELETE). The environment is thus read once per kind, as the PSP client reads its proxies.
"""
from __future__ import annotations

from collections.abc import Callable

import stripe
from stripe import _api_requestor

_OPTIONS = ("api_key", "stripe_account", "stripe_context", "stripe_version")


def request_headers_once(requestor: _api_requestor._APIRequestor) -> None:
    """Replace ``requestor.request_headers`` (on this requestor only) by one that makes each kind once."""
    made: Callable[..., dict[str, str]] = requestor.request_headers
    kinds: dict[tuple, dict[str, str]] = {}

    def request_headers(method, api_mode, options) -> dict[str, str]:
        kind = (method, api_mode, *(str(options.get(name) or "") for name in _OPTIONS),
                repr(stripe.app_info), stripe.enable_telemetry)
        headers = kinds.get(kind)
        if headers is None:
            headers = made(method, api_mode, {**options, "idempotency_key": None})
            headers.pop("Idempotency-Key", None)
            kinds[kind] = headers
        headers = dict(headers)
        key = options.get("idempotency_key")
        if key:
            headers["Idempotency-Key"] = key
        elif method == "post" or (api_mode == "V2" and method == "delete"):
            headers["Idempotency-Key"] = _api_requestor._generate_idempotency_key()
        return headers

    request_headers.made = made
    requestor.request_headers = request_headers
