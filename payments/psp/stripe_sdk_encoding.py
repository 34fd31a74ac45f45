"""The Stripe SDK's form encoding of a request's parameters, with each name and value quoted once per process.

``_APIRequestor`` encodes a request's parameters with ``urllib.parse.urlencode``, which quotes every name
and value through ``quote_plus`` (a dozen or more per payment: ``metadata[payment_order_id]``, ``currency``,
``usd``, ``confirm``, ``true``...), most of them the same on every request: about half of the SDK's own CPU
for a payment once its headers are made once (cProfile). ``form_encoding_cached`` has the SDK's ``urlencode`` quote
through a bounded cache of ``quote_plus``: the same function of the same arguments, so the same body.
"""
from __future__ import annotations

import functools
from urllib.parse import quote_plus, urlencode

from stripe import _api_requestor

_quote_plus = functools.lru_cache(maxsize=2048)(quote_plus)


def form_encoding_cached() -> None:
    """Once: the SDK's ``urlencode`` (the name its request path calls) quoting through ``_quote_plus``."""
    if isinstance(_api_requestor.urlencode, functools.partial):
        return
    _api_requestor.urlencode = functools.partial(urlencode, quote_via=_quote_plus)
