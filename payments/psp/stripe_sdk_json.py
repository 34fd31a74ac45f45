"""The Stripe SDK's responses read into plain dicts.

``stripe._stripe_response.StripeResponse`` reads each body with ``json.loads(body, object_pairs_hook=OrderedDict)``:
every JSON object becomes an ``OrderedDict`` built by a Python-level hook, about twice the CPU of the parse alone
(~10 us against ~4.6 us for a PaymentIntent). A ``dict`` keeps the order too (Python 3.7+) and answers every read
the SDK and our adapter make (``[]``, ``get``, ``in``, iteration, ``StripeObject`` construction); only equality with
another ``OrderedDict`` would tell them apart, and neither compares a response so. ``sdk_json_plain`` replaces that
one constructor, at import (re-check after an SDK upgrade: ``test_stripe_sdk_json.py`` fails if it moves).
"""
from __future__ import annotations

import json
from collections.abc import Mapping

from stripe import _stripe_response


def _init(self, body: str, code: int, headers: Mapping[str, str]) -> None:
    _stripe_response.StripeResponseBase.__init__(self, code, headers)
    self.body = body
    self.data = json.loads(body)


_init.replaces = _stripe_response.StripeResponse.__init__


def sdk_json_plain() -> None:
    """Read the SDK's responses into dicts, once."""
    if getattr(_stripe_response.StripeResponse.__init__, "replaces", None) is None:
        _stripe_response.StripeResponse.__init__ = _init
