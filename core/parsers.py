"""JSON the database can store, or a 400: nesting too deep for Python, NUL characters and
lone surrogates (PostgreSQL text and jsonb refuse both), NaN and Infinity (not JSON)."""
from __future__ import annotations

import math

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Far deeper than any checkout or PSP event (a Stripe event is under 10 levels).
MAX_JSON_DEPTH = 32


def json_problem(value, *, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why parsed JSON cannot be taken as it is, or ``None``. Iterative: any depth is safe to walk."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                return f"JSON nested deeper than {max_depth} levels."
            for key, child in item.items():
                stack.append((key, depth))
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > max_depth:
                return f"JSON nested deeper than {max_depth} levels."
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "JSON strings must not contain NUL (\\u0000)."
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "JSON strings must be valid Unicode (no lone surrogates)."
        elif isinstance(item, float) and not math.isfinite(item):
            return "NaN and Infinity are not JSON numbers."
    return None


def json_loads_problem(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply."
    return f"JSON parse error - {exc}"


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering 400 ``malformed_body`` instead of a 500 for what it lets through."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(json_loads_problem(exc)) from None
        problem = json_problem(data)
        if problem:
            raise ParseError(problem)
        return data
