"""The Stripe SDK's request logging, formatted only when someone will read it.

``stripe._util.log_info`` and ``log_debug`` format every message (``logfmt``: each field through two regular
expressions, the whole response body through ``repr``) before the ``stripe`` logger decides to drop it: five
messages per request, about a sixth of the SDK's CPU for a payment (cProfile, 1,000 ``create_payment`` calls on
loopback). ``sdk_logging_when_enabled`` puts a guard in front of both where the SDK calls them: a message is
made exactly as before when the ``stripe`` logger takes its level or ``stripe.log``/``STRIPE_LOG`` prints it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from stripe import _api_requestor, _util


def _guarded(log: Callable[..., None], level: int, console: tuple[str, ...]) -> Callable[..., None]:
    def log_when_enabled(message, **params) -> None:
        if _util.logger.isEnabledFor(level) or _util._console_log_level() in console:
            log(message, **params)

    log_when_enabled.unguarded = log
    return log_when_enabled


def sdk_logging_when_enabled() -> None:
    """Guard the SDK's two log functions, once, under the names its request path calls them by
    (``_api_requestor`` imported them; ``_http_client`` calls ``_util.log_info``)."""
    if hasattr(_util.log_info, "unguarded"):
        return
    log_info = _guarded(_util.log_info, logging.INFO, ("debug", "info"))
    log_debug = _guarded(_util.log_debug, logging.DEBUG, ("debug",))
    for module in (_util, _api_requestor):
        module.log_info, module.log_debug = log_info, log_debug
