"""Stripe itemized reports through Apache Arrow's CSV reader: the nightly million rows at C speed.

For plain files only (``is_plain``: no quote, backslash, tab, carriage return or NUL byte
anywhere), so that Arrow's rows are exactly the file's lines. Arrow splits each block of
lines into columns (``arrow_blocks``) and the conversions run on whole columns; they accept only
what ``stripe_csv`` would turn into the same values (printable ASCII, amounts with at most the
currency's two decimals, ``YYYY-MM-DD HH:MM:SS`` times). Any other row (an empty required field, a
time zone, a yen amount, ...) is rendered by ``stripe_csv.render_rows`` in its place; a block with a
row of another width or a blank line goes wholly row by row. A file is read the same either way;
``tests/test_fast_import.py`` compares the two.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from core.money import CURRENCY_EXPONENTS
from reconciliation.record_types import RecordType

from . import arrow_blocks
from .arrow_columns import (
    NULL,
    all_of,
    amounts,
    copy_text,
    empty,
    first_nonempty,
    parse_times,
    plain_text,
    references_split,
    repeated,
    sum_up,
    trim,
    write_rows,
)
from .chunks import CopyChunk, ReferencesChecked
from .csv_rows import Columns, CsvRow
from .records import RenderedLine
from .stripe_csv import CATEGORY_TYPES, CONNECTED_CATEGORY_TYPES, StripeLayout, read_header, render_rows

BLOCK_BYTES = 1 << 20  # about 7,500 rows of a Stripe report per block
#: References kept to check they are unique (with the check itself, ~40 MB for a million): past
#: that many no check, so that memory stays bounded; matching then looks for duplicates in SQL.
UNIQUE_CHECK_LIMIT = 1_200_000
_CENTS = pa.array(sorted(code for code, exponent in CURRENCY_EXPONENTS.items() if exponent == 2))
_CATEGORIES = pa.array(list(CATEGORY_TYPES))
_TYPES = pa.array([str(t) for t in CATEGORY_TYPES.values()])
_UNKNOWN, _PAYOUT = RecordType.UNKNOWN.value, RecordType.PAYOUT.value


def is_plain(path: Path) -> bool:
    """No byte that would make Arrow's rows differ from the file's lines or need escaping for COPY."""
    return arrow_blocks.is_plain(path)


def iter_stripe_chunks(path: Path, file_id: int, *,
                       scanned: arrow_blocks.FileBytes | None = None) -> Iterator[CopyChunk | ReferencesChecked]:
    """The report's lines as ``CopyChunk``s of rows of ``settlement_line`` for ``file_id``; then, if every
    block was converted by column, whether its PSP references are unique. ``scanned``: the file's
    ``arrow_blocks.scan``, when the caller has it.

    Raises ``FastPathUnavailable`` (possibly after some chunks) when Arrow cannot read the file.
    """
    header = arrow_blocks.header(path)
    columns, layout = read_header(header)
    printable = (scanned or arrow_blocks.scan(path)).printable
    return arrow_blocks.iter_chunks(path, file_id, _StripeFormat(columns, layout, printable), len(header),
                                    block_bytes=BLOCK_BYTES, unique_limit=UNIQUE_CHECK_LIMIT)


@dataclass(frozen=True)
class _Block:
    """A block's columns as the conversions read them: trimmed text, and the creation times parsed."""

    raw: pa.Array | None  # each row's text (``None`` when the whole file is printable ASCII: not looked at)
    category: pa.Array
    currency: pa.Array  # lowercased
    net: pa.Array  # minor units (null where not an amount)
    gross: pa.Array
    fee: pa.Array
    amounts_ok: pa.Array  # the three are amounts the row parser reads the same (or empty gross, fee)
    created: pa.Array
    spaced: pa.Array  # ``created`` with a space for a "T"
    created_at: pa.Array  # null where it is no time
    real_time: pa.Array  # ``created`` is a time the row parser reads as ``created_at``, or empty


class _StripeFormat:
    def __init__(self, columns: Columns, layout: StripeLayout, printable: bool = False) -> None:
        #: ``printable``: every line of the file is printable ASCII, so no row needs ``plain_text``: a row with
        #: a category (checked) holds something besides separators and spaces.
        self.columns, self.layout, self.printable = columns, layout, printable

    def render(self, rows: Iterable[CsvRow]) -> Iterator[RenderedLine]:
        return render_rows(rows, self.columns, self.layout)

    def block(self, batch: pa.RecordBatch) -> _Block:
        layout = self.layout
        created = first_nonempty(batch, layout.created)
        created_at, real_time = parse_times(created)
        net_ok, net = amounts(trim(batch.column(layout.net)), 2, optional=False)
        gross_ok, gross = amounts(trim(batch.column(layout.gross)), 2)
        fee_ok, fee = amounts(trim(batch.column(layout.fee)), 2)
        return _Block(
            raw=None if self.printable else pc.binary_join_element_wise(*batch.columns, ","),
            category=trim(batch.column(layout.category)),
            currency=pc.utf8_lower(trim(batch.column(layout.currency))), net=net, gross=gross, fee=fee,
            amounts_ok=all_of([net_ok, gross_ok, fee_ok]), created=created,
            spaced=pc.replace_substring(created, "T", " "), created_at=created_at, real_time=real_time,
        )

    def convertible(self, block: _Block) -> pa.Array:
        """Per row, whether the conversions read it as ``stripe_csv`` would: printable ASCII, not blank, a
        category, a two-decimal currency, plain amounts, a real ``YYYY-MM-DD HH:MM:SS`` time or none."""
        checks = [
            pc.not_equal(block.category, ""),
            pc.is_in(block.currency, value_set=_CENTS),
            block.amounts_ok,
            block.real_time,
        ]
        return all_of(checks if block.raw is None else [plain_text(block.raw), *checks])

    def converted(self, batch: pa.RecordBatch, block: _Block, ordinals: pa.Array, numbers: pa.Array,
                  file_id: int) -> tuple[CopyChunk, pa.Array]:
        """Rows every one of which the conversions read, as a chunk (its charges' PSP references in
        ``charge_references``), with the other rows' non-empty PSP references."""
        layout, count = self.layout, batch.num_rows
        category = pc.utf8_lower(block.category)
        record_type = pc.fill_null(pc.take(_TYPES, pc.index_in(category, value_set=_CATEGORIES)), _UNKNOWN)
        if layout.connected_account is not None:  # a connected account's payouts (``stripe_csv``)
            connected = pc.not_equal(trim(batch.column(layout.connected_account)), "")
            for name, connected_type in CONNECTED_CATEGORY_TYPES.items():
                record_type = pc.if_else(pc.and_(connected, pc.equal(category, name)), str(connected_type),
                                         record_type)
        net_units, gross_units, fee_units = block.net, block.gross, block.fee
        source_id = trim(batch.column(layout.source_id)) if layout.source_id is not None else empty(count)
        payout = first_nonempty(batch, layout.payout)
        payout = pc.if_else(
            pc.and_(pc.and_(pc.equal(payout, ""), pc.equal(record_type, _PAYOUT)), pc.starts_with(source_id, "po_")),
            source_id, payout)
        stamp = pc.if_else(pc.equal(block.created, ""), NULL,
                           pc.binary_join_element_wise(block.spaced, "+00:00", ""))
        psp = first_nonempty(batch, layout.psp)
        chunk = write_rows([
            repeated(str(file_id), count), copy_text(ordinals), copy_text(numbers), record_type, block.category,
            psp, source_id, first_nonempty(batch, layout.merchant), payout, block.currency, copy_text(gross_units),
            copy_text(fee_units), copy_text(net_units), stamp, empty(count), empty(count),
        ], count)
        sum_up(chunk, record_type, block.created_at, payout, block.currency, fee_units, net_units)
        chunk.charge_references, others = references_split(record_type, psp)
        return chunk, others
