"""Adyen settlement details reports through Apache Arrow's CSV reader (``arrow_blocks``), column by column.

The conversions accept only what ``adyen_csv._record`` turns into the same values: a row without a quote, an
ASCII ``Type``, a known net currency, plain amounts with at most the currency's decimals (the gross ones in
the gross currency's), a ``TimeZone`` abbreviation ``dates.zone`` knows as a fixed offset (or none), and a
``Creation Date`` of ``YYYY-MM-DD HH:MM:SS`` (or none). Any other row (a malformed amount, a time zone by IANA
name, a quoted payout description, a type in another script...) is rendered by ``adyen_csv.render_rows`` in its
place, so a report is read the same either way (``tests/test_fast_import_adyen.py``). A quote is allowed in the
file (Adyen quotes a payout's description): its rows are the row parser's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from core.money import CURRENCY_EXPONENTS
from reconciliation.record_types import DISPUTE_LINES, RecordType

from . import arrow_blocks
from .adyen_csv import FEE_COLUMNS, TYPE_MAP, read_header, render_rows
from .arrow_columns import (
    all_of,
    amounts,
    column,
    copy_text,
    empty,
    parse_times,
    references_split,
    repeated,
    sum_up,
    utc_text,
    write_rows,
)
from .chunks import CopyChunk, ReferencesChecked
from .csv_rows import Columns, CsvRow
from .dates import TZ_ABBREVIATIONS
from .records import RenderedLine

BLOCK_BYTES = 1 << 20  # about 6,000 rows of an Adyen report per block
UNIQUE_CHECK_LIMIT = 1_200_000  # as ``stripe_arrow``'s
_CODES = pa.array(sorted(CURRENCY_EXPONENTS))
_EXPONENTS = pa.array([CURRENCY_EXPONENTS[code] for code in sorted(CURRENCY_EXPONENTS)], pa.int64())
_TYPE_NAMES = pa.array(list(TYPE_MAP))
_TYPES = pa.array([str(t) for t in TYPE_MAP.values()])
_DISPUTES = pa.array([str(t) for t in DISPUTE_LINES])
_ZONES = pa.array(["", *TZ_ABBREVIATIONS])
_OFFSETS = pa.array([0, *(round(hours * 3600) for hours in TZ_ABBREVIATIONS.values())], pa.int64())
_UNKNOWN = RecordType.UNKNOWN.value
_NAMES = {"type": "Type", "currency": "Net Currency", "net_debit": "Net Debit (NC)",
          "net_credit": "Net Credit (NC)", "gross_currency": "Gross Currency", "gross_debit": "Gross Debit (GC)",
          "gross_credit": "Gross Credit (GC)", "created": "Creation Date", "zone": "TimeZone",
          "psp": "Psp Reference", "merchant": "Merchant Reference", "batch": "Batch Number",
          "modification": "Modification Reference"}


def is_plain(path: Path) -> bool:
    """No byte that would make Arrow's rows differ from the file's lines or need escaping for COPY (quotes
    allowed: their rows go to the row parser)."""
    return arrow_blocks.is_plain(path, quotes=True)


def iter_adyen_chunks(path: Path, file_id: int, *,
                      scanned: arrow_blocks.FileBytes | None = None) -> Iterator[CopyChunk | ReferencesChecked]:
    """The report's lines as ``CopyChunk``s of rows of ``settlement_line`` for ``file_id``; then, if every
    block was converted by column, whether its PSP references are unique. ``scanned``: the file's
    ``arrow_blocks.scan``, when the caller has it.

    Raises ``FastPathUnavailable`` (possibly after some chunks) when Arrow cannot read the file.
    """
    header = arrow_blocks.header(path)
    columns = read_header(header)
    quoted = (scanned or arrow_blocks.scan(path)).quote
    return arrow_blocks.iter_chunks(path, file_id, _AdyenFormat(columns, quoted), len(header),
                                    block_bytes=BLOCK_BYTES, unique_limit=UNIQUE_CHECK_LIMIT)


@dataclass(frozen=True)
class _Block:
    """A block's columns as the conversions read them (trimmed; amounts in minor units), with what the checks
    found."""

    quote: pa.Array  # the row holds a quote somewhere
    type: pa.Array
    currency: pa.Array  # lowercased
    known_currency: pa.Array
    net: pa.Array  # credit - debit
    fee: pa.Array  # the four fee columns added up; null when all are empty
    gross: pa.Array  # in the net currency; null when there is none
    amounts_ok: pa.Array  # every amount one the row parser reads the same, and a net one
    created: pa.Array
    created_at: pa.Array  # naive, in the row's time zone; null where it is no time
    real_time: pa.Array  # ``created`` is a time the row parser reads as ``created_at``, or empty
    offset: pa.Array  # the time zone's offset from UTC in seconds; null for a zone not converted here
    psp: pa.Array
    merchant: pa.Array
    batch: pa.Array
    modification: pa.Array


class _AdyenFormat:
    def __init__(self, columns: Columns, quoted: bool) -> None:
        self.columns, self.quoted = columns, quoted
        self.positions = {key: columns.position(name) for key, name in _NAMES.items()}
        self.fee_positions = [columns.position(name) for name in FEE_COLUMNS]

    def render(self, rows: Iterable[CsvRow]) -> Iterator[RenderedLine]:
        return render_rows(rows, self.columns)

    def block(self, batch: pa.RecordBatch) -> _Block:
        values = {key: column(batch, position) for key, position in self.positions.items()}
        # ASCII case only: str.lower/upper can make ASCII of other letters ("ß".upper() == "SS"), and such a row
        # is the row parser's.
        currency = pc.ascii_lower(values.pop("currency"))
        exponent = pc.take(_EXPONENTS, pc.index_in(currency, value_set=_CODES))
        gross_currency = pc.ascii_lower(values.pop("gross_currency"))
        zone = pc.ascii_upper(values.pop("zone"))
        created_at, real_time = parse_times(values["created"])
        # A quote anywhere makes csv.reader split the row (what a column holds is checked column by column:
        # Arrow's utf8_trim_whitespace trims what str.strip does, every code point of the BMP compared).
        quote = (pc.match_substring(pc.binary_join_element_wise(*batch.columns, ","), '"') if self.quoted
                 else pa.repeat(False, batch.num_rows))
        net_ok, net, has_net = _signed(values.pop("net_debit"), values.pop("net_credit"), exponent)
        fee_checks, fee = _fees([column(batch, position) for position in self.fee_positions], exponent)
        gross_debit, gross_credit = values.pop("gross_debit"), values.pop("gross_credit")
        gross_ok, gross, has_gross = _gross(gross_debit, gross_credit, gross_currency, currency, net, fee)
        return _Block(
            quote=quote, currency=currency, known_currency=pc.is_valid(exponent), net=net, fee=fee, gross=gross,
            amounts_ok=all_of([net_ok, has_net, *fee_checks, pc.or_(pc.invert(has_gross), gross_ok)]),
            created_at=created_at, real_time=real_time,
            offset=pc.take(_OFFSETS, pc.index_in(zone, value_set=_ZONES)), **values,
        )

    def convertible(self, block: _Block) -> pa.Array:
        """Per row, whether the conversions read it as ``adyen_csv._record`` would."""
        return all_of([
            pc.invert(block.quote),  # the row parser's csv.reader splits a quoted row
            pc.not_equal(block.type, ""),  # and so the row is not blank
            pc.string_is_ascii(block.type),  # lowercased as str.lower does
            block.known_currency,
            block.amounts_ok,
            pc.is_valid(block.offset),
            block.real_time,
        ])

    def converted(self, batch: pa.RecordBatch, block: _Block, ordinals: pa.Array, numbers: pa.Array,
                  file_id: int) -> tuple[CopyChunk, pa.Array]:
        """Rows every one of which the conversions read, as a chunk (its charges' PSP references in
        ``charge_references``), with the other rows' non-empty PSP references."""
        count = batch.num_rows
        record_type = pc.fill_null(pc.take(_TYPES, pc.index_in(pc.ascii_lower(block.type), value_set=_TYPE_NAMES)),
                                   _UNKNOWN)
        source = pc.if_else(pc.is_in(record_type, value_set=_DISPUTES), block.modification, "")
        utc = pc.subtract(block.created_at, pc.cast(block.offset, pa.duration("s")))
        blank = empty(count)
        chunk = write_rows([
            repeated(str(file_id), count), copy_text(ordinals), copy_text(numbers), record_type, block.type,
            block.psp, source, block.merchant, block.batch, block.currency, copy_text(block.gross),
            copy_text(block.fee), copy_text(block.net), utc_text(utc, pc.not_equal(block.created, "")), blank, blank,
        ], count)
        sum_up(chunk, record_type, utc, block.batch, block.currency, block.fee, block.net)
        chunk.charge_references, others = references_split(record_type, block.psp)
        return chunk, others


def _signed(debit: pa.Array, credit: pa.Array, exponent: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Whether both are amounts (or empty), ``credit - debit`` in minor units (an empty one as 0), and whether
    there is either."""
    debit_ok, debit_units = amounts(debit, exponent)
    credit_ok, credit_units = amounts(credit, exponent)
    signed = pc.subtract(pc.fill_null(credit_units, 0), pc.fill_null(debit_units, 0))
    return pc.and_(debit_ok, credit_ok), signed, pc.or_(pc.not_equal(debit, ""), pc.not_equal(credit, ""))


def _fees(values: list[pa.Array], exponent: pa.Array) -> tuple[list[pa.Array], pa.Array]:
    """Per fee column whether it is an amount (or empty), and their sum (null when all are empty)."""
    checks, units = zip(*(amounts(value, exponent) for value in values), strict=True)
    any_fee, total = pc.is_valid(units[0]), pc.fill_null(units[0], 0)
    for fee in units[1:]:
        any_fee, total = pc.or_(any_fee, pc.is_valid(fee)), pc.add(total, pc.fill_null(fee, 0))
    return list(checks), pc.if_else(any_fee, total, pa.scalar(None, pa.int64()))


def _gross(debit: pa.Array, credit: pa.Array, gross_currency: pa.Array, currency: pa.Array, net: pa.Array,
           fee: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Whether the gross is read the same (a known gross currency, amounts in its decimals), the gross in the
    net currency (converted: net + fee, as ``adyen_csv``), and whether the row has one."""
    exponent = pc.take(_EXPONENTS, pc.index_in(gross_currency, value_set=_CODES))
    ok, signed, has_gross = _signed(debit, credit, exponent)
    same = pc.fill_null(pc.equal(gross_currency, currency), False)
    gross = pc.if_else(same, signed, pc.add(net, pc.fill_null(fee, 0)))
    return pc.and_kleene(pc.is_valid(exponent), ok), pc.if_else(has_gross, gross, pa.scalar(None, pa.int64())), \
        has_gross
