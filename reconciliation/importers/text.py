"""Text read from a file: trimmed fields, and the one-line excerpt an operator is shown of a bad line."""

from __future__ import annotations

SOURCE_LINE_LIMIT = 300


def excerpt(text: str, limit: int = SOURCE_LINE_LIMIT) -> str:
    """A one-line, at most ``limit`` characters long excerpt for an operator."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 3] + "..."


def clean(value: str | None) -> str | None:
    """Strip a field; empty strings become ``None``."""
    if value is None:
        return None
    value = value.strip()
    return value or None
