"""Streaming parsers for nightly PSP settlement reports and bank statements.

>>> for item in iter_records(Path("settlement.csv")):
...     if isinstance(item, MalformedRecord): ...
...     elif isinstance(item, SettlementRecord): ...
...     else: ...  # FileHeader: statement-level facts (balances)

Formats (``FORMATS``): ``stripe`` (payout reconciliation report, itemized),
``adyen`` (settlement details report), ``camt053`` (ISO 20022 bank statement) and
``mt940`` (SWIFT bank statement). A bad line gives a ``MalformedRecord`` and parsing
goes on; a file that cannot be read at all raises ``ImportFormatError`` (or
``UnsupportedFormat`` from ``detect_format``), both ``ValueError`` subclasses.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from reconciliation.record_types import RECORD_TYPES

from .adyen_csv import iter_adyen
from .camt053 import iter_camt053
from .chunks import ChunkBuilder, CopyChunk, ReferencesChecked
from .errors import FastPathUnavailable, ImportFormatError, UnsupportedFormat
from .mt940_sta import iter_mt940
from .records import (
    LINE_ROW_FIELDS,
    FileHeader,
    MalformedRecord,
    RenderedLine,
    SettlementRecord,
    line_row,
    render_line_row,
)
from .stripe_csv import iter_stripe, iter_stripe_lines

__all__ = [
    "FORMATS",
    "LINE_ROW_FIELDS",
    "RECORD_TYPES",
    "CopyChunk",
    "FastPathUnavailable",
    "FileHeader",
    "ImportFormatError",
    "MalformedRecord",
    "ReferencesChecked",
    "SettlementRecord",
    "UnsupportedFormat",
    "detect_format",
    "iter_copy_chunks",
    "iter_rendered_lines",
    "iter_records",
]

FORMATS = ("stripe", "adyen", "camt053", "mt940")

Item = FileHeader | SettlementRecord | MalformedRecord

_PARSERS: dict[str, Callable[[Path], Iterator[Item]]] = {
    "stripe": iter_stripe,
    "adyen": iter_adyen,
    "camt053": iter_camt053,
    "mt940": iter_mt940,
}

_SNIFF_BYTES = 8192
_MT940_START = re.compile(r"(?m)^:20:")
_MT940_TAGS = re.compile(r"(?m)^:(25|28C?|60[FM]|61):")
_ADYEN_COLUMNS = {"type", "psp reference", "net currency"}
_STRIPE_COLUMNS = {"reporting_category", "currency", "net"}


def detect_format(path: Path) -> str:
    """Sniff the first few KB of ``path``: one of ``FORMATS`` or ``UnsupportedFormat``."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    text = head.decode("utf-8-sig", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith("<"):
        if "camt.053" in text or "BkToCstmrStmt" in text:
            return "camt053"
        raise UnsupportedFormat(f"{path.name}: XML, but not a camt.053 statement")
    if _MT940_START.search(text) and _MT940_TAGS.search(text):
        return "mt940"
    first_line = next((line for line in stripped.splitlines() if line.strip()), "")
    try:
        header = next(csv.reader(io.StringIO(first_line)), [])
    except csv.Error:
        header = []
    names = {" ".join(name.split()).casefold() for name in header}
    if _ADYEN_COLUMNS <= names:
        return "adyen"
    if _STRIPE_COLUMNS <= names:
        return "stripe"
    raise UnsupportedFormat(f"{path.name}: not a Stripe or Adyen settlement CSV, camt.053 or MT940 file")


def iter_records(path: Path, fmt: str = "auto") -> Iterator[Item]:
    """Parse ``path`` lazily, yielding headers, records and malformed lines in order.

    The format is detected now (``fmt="auto"``); the file itself is read as the
    returned iterator is consumed, so ``ImportFormatError`` (missing columns, ...)
    surfaces on the first ``next()``.
    """
    path = Path(path)
    if fmt == "auto":
        fmt = detect_format(path)
    try:
        parser = _PARSERS[fmt]
    except KeyError:
        raise UnsupportedFormat(f"unknown format {fmt!r}; expected one of {FORMATS}") from None
    return parser(path)


def iter_rendered_lines(path: Path, fmt: str = "auto") -> Iterator[FileHeader | RenderedLine]:
    """``iter_records``, with each record and malformed line rendered for COPY (``records.RenderedLine``).

    The importing service writes these; a Stripe report's plain rows are rendered without
    building a record per line.
    """
    path = Path(path)
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "stripe":
        return iter_stripe_lines(path)
    return (item if isinstance(item, FileHeader) else render_line_row(line_row(item))
            for item in iter_records(path, fmt))


def iter_copy_chunks(path: Path, fmt: str, file_id: int, *,
                     fast: bool = True) -> Iterator[FileHeader | CopyChunk | ReferencesChecked]:
    """The file's lines as rows of ``settlement_line`` for ``file_id`` (``chunks.CopyChunk``), its
    headers and, when the parser checked them, whether its PSP references are unique.

    With ``fast``, a plain Stripe or Adyen report goes through Arrow (``stripe_arrow``, ``adyen_arrow``), which
    may raise ``FastPathUnavailable`` part-way: the caller then starts again with ``fast=False``.
    """
    path = Path(path)
    if fmt == "auto":
        fmt = detect_format(path)
    if fast and fmt in ("stripe", "adyen"):
        from . import arrow_blocks  # pyarrow is loaded by the processes that import files, not by every one

        scanned = arrow_blocks.scan(path)  # one pass: is it plain, has it quotes, is it all printable ASCII
        if fmt == "stripe" and scanned.plain():
            from . import stripe_arrow

            yield from stripe_arrow.iter_stripe_chunks(path, file_id, scanned=scanned)
            return
        if fmt == "adyen" and scanned.plain(quotes=True):  # a quoted row goes to the row parser
            from . import adyen_arrow

            yield from adyen_arrow.iter_adyen_chunks(path, file_id, scanned=scanned)
            return
    builder = ChunkBuilder(file_id)
    for item in iter_rendered_lines(path, fmt):
        if isinstance(item, FileHeader):
            yield item
        elif (chunk := builder.add(item)) is not None:
            yield chunk
    if (chunk := builder.flush()) is not None:
        yield chunk
