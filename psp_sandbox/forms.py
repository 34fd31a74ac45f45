"""Stripe's form bodies: decoded into nested dicts, and fingerprinted for the idempotency check."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .encoding import dumps

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Decode Stripe-style form pairs (``metadata[k]=v``, ``expand[]=x``) into nested dicts."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if "[" not in key:  # what the match below does with it (one part, or no match)
            out[key] = value
            continue
        m = _KEY.match(key)
        if not m:
            out[key] = value
            continue
        path = [m.group(1), *re.findall(r"\[([^\[\]]*)\]", m.group(2))]
        node: Any = out
        for i, part in enumerate(path[:-1]):
            nxt = path[i + 1]
            default: Any = [] if nxt == "" else {}
            if isinstance(node, dict):
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = default
                node = node[part]
            else:  # list: "[]" followed by more keys -> append a new dict
                node.append(default)
                node = node[-1]
        last = path[-1]
        if isinstance(node, list):
            node.append(value)
        else:
            node[last] = value
    return out


def fingerprint(method: str, path: str, pairs: list[tuple[str, str]]) -> str:
    """Hash identifying a request's parameters (for idempotency-key reuse checks)."""
    return hashlib.sha256(dumps([method, path, sorted(pairs)]).encode()).hexdigest()
