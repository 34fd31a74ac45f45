"""The API request being served, for the events it causes (``request.id``, ``api_version``).

The HTTP handler sets it per request (each request runs in its own thread); background
work (processing completing, a 3-D Secure challenge) runs with ``request_id=None`` and the
API version the PaymentIntent was created with.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

DEFAULT_API_VERSION = "2026-10-28.endive"  # used when a request sends no Stripe-Version


@dataclass(frozen=True)
class RequestContext:
    """Who caused what is happening now."""

    request_id: str | None = None
    idempotency_key: str | None = None
    api_version: str = DEFAULT_API_VERSION
    base_url: str = ""  # where the sandbox is reached, for the 3-D Secure challenge page


_NONE = RequestContext()
_current: ContextVar[RequestContext | None] = ContextVar("psp_sandbox_request", default=None)


def current() -> RequestContext:
    """The context of the work in progress."""
    return _current.get() or _NONE


@contextmanager
def use(ctx: RequestContext) -> Iterator[RequestContext]:
    """Run the body with ``ctx`` as the current context."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
