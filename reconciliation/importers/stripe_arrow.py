"""Stripe itemized reports through Apache Arrow's CSV reader: the nightly million rows at C speed.

For plain files only (``is_plain``: no quote, backslash, tab, carriage return or NUL byte
anywhere), so that Arrow's rows are exactly the file's lines. Arrow splits each block of
lines into columns and the conversions run on whole columns; they accept only what
``stripe_csv`` would turn into the same values (ASCII text, amounts with exactly the
currency's two decimals or none, ``YYYY-MM-DD HH:MM:SS`` times). A block with any other row
(another width, an empty required field, a time zone, a yen amount, a blank line, ...) is
rendered row by row by ``stripe_csv.render_rows`` instead, so a file is read the same either
way; ``tests/test_importers.py`` compares the two.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from core.money import CURRENCY_EXPONENTS
from reconciliation.record_types import RecordType

from .chunks import ChunkBuilder, CopyChunk, ReferencesChecked
from .csv_rows import Columns, CsvRow
from .errors import FastPathUnavailable
from .fees import arrow_line_fees
from .stripe_csv import CATEGORY_TYPES, CONNECTED_CATEGORY_TYPES, StripeLayout, read_header, render_rows

BLOCK_BYTES = 1 << 20  # about 7,500 rows of a Stripe report per block
#: References kept to check they are unique (with the check itself, ~40 MB for a million): past
#: that many no check, so that memory stays bounded; matching then looks for duplicates in SQL.
UNIQUE_CHECK_LIMIT = 1_200_000
_NOT_PLAIN = (b'"', b"\\", b"\t", b"\r", b"\x00")
_AMOUNT = r"^-?[0-9]{1,15}(\.[0-9]{2})?$"  # two decimals or none: the currencies with exponent 2
_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"
_CENTS = pa.array(sorted(code for code, exponent in CURRENCY_EXPONENTS.items() if exponent == 2))
_CATEGORIES = pa.array(list(CATEGORY_TYPES))
_TYPES = pa.array([str(t) for t in CATEGORY_TYPES.values()])
_UNKNOWN, _PAYOUT = RecordType.UNKNOWN.value, RecordType.PAYOUT.value
_NULL = "\\N"


def is_plain(path: Path) -> bool:
    """No byte that would make Arrow's rows differ from the file's lines or need escaping for COPY."""
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            if any(byte in block for byte in _NOT_PLAIN):
                return False
    return True


def iter_stripe_chunks(path: Path, file_id: int) -> Iterator[CopyChunk | ReferencesChecked]:
    """The report's lines as ``CopyChunk``s of rows of ``settlement_line`` for ``file_id``; then,
    if every block was converted by column, whether its PSP references are unique.

    Raises ``FastPathUnavailable`` (possibly after some chunks) when Arrow cannot read the file.
    """
    header = _header(path)
    columns, layout = read_header(header)
    invalid: dict[int, str] = {}  # physical line number -> text of a row of another width
    reader = _open_reader(path, len(header), invalid)
    rows = ChunkBuilder(file_id, size=sys.maxsize)  # flushed once per block
    references: list[pa.Array] | None = []  # None once a block went row by row, or past the limit
    kept = 0
    next_line = 2  # the header is line 1
    while (batch := _next_batch(reader)) is not None:
        numbers = _line_numbers(next_line, batch.num_rows, invalid)
        skipped = [number for number in range(next_line, numbers[-1] + 1) if number in invalid] if numbers else []
        if numbers:
            next_line = numbers[-1] + 1
        chunk, psp = (None, None) if skipped else _fast_chunk(batch, numbers, columns, layout, rows)
        if chunk is None:
            references = None
            chunk = _row_by_row(batch, numbers, skipped, invalid, columns, layout, rows)
        elif psp is None:  # some rows went row by row: their references are the row parser's
            references = None
        elif references is not None:
            references.append(pc.filter(psp, pc.not_equal(psp, "")))
            kept += len(references[-1])
            if kept > UNIQUE_CHECK_LIMIT:
                references = None
        if chunk is not None:
            yield chunk
    # Rows of another width after the last valid row.
    tail = sorted(number for number in invalid if number >= next_line)
    if tail:
        references = None
        chunk = _row_by_row(None, [], tail, invalid, columns, layout, rows)
        if chunk is not None:
            yield chunk
    if references is not None:
        unique = _unique(references)
        del references  # before the pool gives back what it can
        yield ReferencesChecked(unique=unique)
    pa.default_memory_pool().release_unused()  # a worker process lives on after the import


def _header(path: Path) -> list[str]:
    """The first line's column names; the row-by-row parser looks further, or says the file is empty."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        try:
            header = handle.readline().rstrip("\n").split(",")
        except UnicodeDecodeError as exc:
            raise FastPathUnavailable(str(exc)) from exc
    if not any(name.strip() for name in header):
        raise FastPathUnavailable("no header on the first line")
    return header


def _open_reader(path: Path, width: int, invalid: dict[int, str]) -> pacsv.CSVStreamingReader:
    """Arrow's streaming reader past the header, every column as text; a row of another width than the
    header's is put in ``invalid`` (by its line number) and skipped."""
    names = [f"c{position}" for position in range(width)]

    def on_invalid(row: pacsv.InvalidRow) -> str:
        if row.number is None:
            raise FastPathUnavailable("Arrow did not say which line is invalid")
        invalid[row.number] = row.text
        return "skip"

    try:
        return pacsv.open_csv(
            pa.input_stream(str(path)),  # read, not memory-mapped: RSS stays flat
            read_options=pacsv.ReadOptions(use_threads=False, block_size=BLOCK_BYTES, skip_rows=1,
                                           column_names=names),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False,
                                             newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                 strings_can_be_null=False),
        )
    except pa.ArrowInvalid as exc:
        raise FastPathUnavailable(str(exc)) from exc


def _next_batch(reader: pacsv.CSVStreamingReader) -> pa.RecordBatch | None:
    """The next block of rows; ``None`` at the end."""
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None
    except pa.ArrowInvalid as exc:
        raise FastPathUnavailable(str(exc)) from exc


def _unique(references: list[pa.Array]) -> bool:
    every = pa.chunked_array(references, pa.string())
    return pc.count_distinct(every).as_py() == len(every)


def _line_numbers(start: int, count: int, invalid: dict[int, str]) -> list[int]:
    """Physical line numbers of ``count`` valid rows from ``start`` on, past the invalid ones."""
    if not invalid or max(invalid) < start:
        return list(range(start, start + count))
    numbers, number = [], start
    while len(numbers) < count:
        if number not in invalid:
            numbers.append(number)
        number += 1
    return numbers


def _row_by_row(batch: pa.RecordBatch | None, numbers: list[int], skipped: list[int], invalid: dict[int, str],
                columns: Columns, layout: StripeLayout, rows: ChunkBuilder) -> CopyChunk | None:
    """A block ``stripe_csv.render_rows`` renders: its rows and the invalid rows among them, in line order."""
    items = []
    if batch is not None:
        values = [column.to_pylist() for column in batch.columns]
        for index, number in enumerate(numbers):
            fields = [value[index] for value in values]
            items.append(CsvRow(number, fields, ",".join(fields) + "\n"))
    for number in skipped:
        text = invalid.pop(number)
        items.append(CsvRow(number, text.split(","), text + "\n"))
    items.sort(key=lambda item: item.line_number)
    # A blank line is no row (as for csv_rows.iter_csv_rows).
    items = [item for item in items if item.raw.replace(",", "").strip()]
    for rendered in render_rows(items, columns, layout):
        rows.add(rendered)
    return rows.flush()


def _trim(array: pa.Array) -> pa.Array:
    return pc.utf8_trim_whitespace(array)


def _first_nonempty(batch: pa.RecordBatch, positions: list[int]) -> pa.Array:
    """Per row, the first of the columns that is not empty after trimming; ``""`` for none."""
    if not positions:
        return pa.array([""] * batch.num_rows, pa.string())
    values = [_trim(batch.column(position)) for position in positions]
    if len(values) == 1:
        return values[0]
    nullable = [pc.if_else(pc.equal(value, ""), pa.scalar(None, pa.string()), value) for value in values]
    return pc.fill_null(pc.coalesce(*nullable), "")


def _minor_units(text: pa.Array) -> pa.Array:
    """Plain amounts (``_AMOUNT``) to minor units of a two-decimal currency; ``""`` gives null."""
    digits = pc.if_else(pc.match_substring(text, "."), pc.replace_substring(text, ".", ""),
                        pc.binary_join_element_wise(text, "00", ""))
    empty = pc.equal(text, "")
    units = pc.cast(pc.if_else(empty, "0", digits), pa.int64())
    return pc.if_else(empty, pa.scalar(None, pa.int64()), units)


def _text(array: pa.Array) -> pa.Array:
    return pc.fill_null(pc.cast(array, pa.string()), _NULL)


@dataclass(frozen=True)
class _Block:
    """A block's columns as the conversions read them: trimmed text, and the creation times parsed."""

    raw: pa.Array  # each row's text
    category: pa.Array
    currency: pa.Array  # lowercased
    net: pa.Array
    gross: pa.Array
    fee: pa.Array
    created: pa.Array
    spaced: pa.Array  # ``created`` with a space for a "T"
    created_at: pa.Array  # null where it is no time


def _block(batch: pa.RecordBatch, layout: StripeLayout) -> _Block:
    created = _first_nonempty(batch, layout.created)
    spaced = pc.replace_substring(created, "T", " ")
    net, gross, fee = (_trim(batch.column(position)) for position in (layout.net, layout.gross, layout.fee))
    return _Block(
        raw=pc.binary_join_element_wise(*batch.columns, ","), category=_trim(batch.column(layout.category)),
        currency=pc.utf8_lower(_trim(batch.column(layout.currency))), net=net, gross=gross, fee=fee,
        created=created, spaced=spaced,
        created_at=pc.strptime(spaced, format="%Y-%m-%d %H:%M:%S", unit="s", error_is_null=True),
    )


def _convertible(block: _Block) -> pa.Array:
    """Per row, whether the conversions read it as ``stripe_csv`` would: ASCII, not blank, a category, a
    two-decimal currency, plain amounts, a real ``YYYY-MM-DD HH:MM:SS`` time or none."""
    # strptime rolls "02-30" over into March: a real date is one that reads back the same.
    real_date = pc.equal(pc.strftime(block.created_at, format="%Y-%m-%d %H:%M:%S"), block.spaced)
    checks = [
        pc.string_is_ascii(block.raw),
        pc.invert(pc.match_substring_regex(block.raw, "[\\x00-\\x1f]")),
        pc.not_equal(pc.replace_substring(pc.replace_substring(block.raw, ",", ""), " ", ""), ""),  # not blank
        pc.not_equal(block.category, ""),
        pc.is_in(block.currency, value_set=_CENTS),
        pc.match_substring_regex(block.net, _AMOUNT),
        pc.or_(pc.equal(block.gross, ""), pc.match_substring_regex(block.gross, _AMOUNT)),
        pc.or_(pc.equal(block.fee, ""), pc.match_substring_regex(block.fee, _AMOUNT)),
        pc.or_(pc.equal(block.created, ""), pc.and_(pc.match_substring_regex(block.created, _TIME), real_date)),
    ]
    every = checks[0]
    for check in checks[1:]:
        every = pc.and_kleene(every, check)
    return pc.fill_null(every, False)  # a null (an unparsable time, say) counts as a failed check


def _fast_chunk(batch: pa.RecordBatch, numbers: list[int], columns: Columns, layout: StripeLayout,
                rows: ChunkBuilder) -> tuple[CopyChunk | None, pa.Array | None]:
    """The block converted column by column, with its PSP references; the few rows the conversions are not sure
    of rendered by ``render_rows`` in their place (then no references: ``None``). ``(None, None)`` when the
    block has no row to convert, or a blank odd row (it is no line: the ordinals after it move)."""
    count = batch.num_rows
    if count == 0:
        return None, None
    block = _block(batch, layout)
    convertible = _convertible(block)
    odd = pc.indices_nonzero(pc.invert(convertible)).to_pylist()
    first_ordinal = rows.ordinal + 1
    ordinals = pa.array(range(first_ordinal, first_ordinal + count))
    if not odd:
        rows.ordinal += count
        return _converted(batch, block, ordinals, pa.array(numbers), layout, rows.file_id)
    items = _csv_rows(batch, odd, numbers)
    if len(odd) == count or any(not item.raw.replace(",", "").strip() for item in items):
        return None, None
    good = _Block(*(pc.filter(getattr(block, name), convertible) for name in _Block.__dataclass_fields__))
    chunk, _ = _converted(batch.filter(convertible), good, ordinals.filter(convertible),
                          pa.array(numbers).filter(convertible), layout, rows.file_id)
    for position, line in zip(odd, render_rows(items, columns, layout), strict=True):
        rows.ordinal = first_ordinal + position - 1
        rows.add(line)
    rows.ordinal = first_ordinal + count - 1
    odd_chunk = rows.flush()
    # In line order (the first of twins is the first line); COPY text escapes a newline within a value.
    lines = chunk.text.split(b"\n")[:-1]
    for position, text in zip(odd, odd_chunk.text.split("\n"), strict=False):
        lines.insert(position, text.encode())
    lines.append(b"")
    chunk.text = b"\n".join(lines)
    chunk.absorb(odd_chunk)
    return chunk, None


def _csv_rows(batch: pa.RecordBatch, positions: list[int], numbers: list[int]) -> list[CsvRow]:
    """The rows at ``positions`` as the row-by-row parser reads them."""
    taken = pa.array(positions)
    values = [column.take(taken).to_pylist() for column in batch.columns]
    items = []
    for n, position in enumerate(positions):
        fields = [value[n] for value in values]
        items.append(CsvRow(numbers[position], fields, ",".join(fields) + "\n"))
    return items


def _converted(batch: pa.RecordBatch, block: _Block, ordinals: pa.Array, numbers: pa.Array, layout: StripeLayout,
               file_id: int) -> tuple[CopyChunk, pa.Array]:
    """Rows every one of which the conversions read (``_convertible``), as a chunk, with their PSP references."""
    count = batch.num_rows
    record_type = pc.fill_null(
        pc.take(_TYPES, pc.index_in(pc.utf8_lower(block.category), value_set=_CATEGORIES)), _UNKNOWN)
    if layout.connected_account is not None:  # a connected account's payouts (``stripe_csv``)
        connected = pc.not_equal(_trim(batch.column(layout.connected_account)), "")
        for category, connected_type in CONNECTED_CATEGORY_TYPES.items():
            record_type = pc.if_else(pc.and_(connected, pc.equal(pc.utf8_lower(block.category), category)),
                                     str(connected_type), record_type)
    net_units, gross_units, fee_units = _minor_units(block.net), _minor_units(block.gross), _minor_units(block.fee)
    source_id = _trim(batch.column(layout.source_id)) if layout.source_id is not None else pa.array([""] * count)
    payout = _first_nonempty(batch, layout.payout)
    payout = pc.if_else(
        pc.and_(pc.and_(pc.equal(payout, ""), pc.equal(record_type, _PAYOUT)), pc.starts_with(source_id, "po_")),
        source_id, payout)
    stamp = pc.if_else(pc.equal(block.created, ""), _NULL,
                       pc.binary_join_element_wise(block.spaced, "+00:00", ""))
    psp = _first_nonempty(batch, layout.psp)
    table = pa.table([
        pa.array([str(file_id)] * count), _text(ordinals), _text(numbers), record_type, block.category, psp,
        source_id, _first_nonempty(batch, layout.merchant), payout, block.currency, _text(gross_units),
        _text(fee_units), _text(net_units), stamp, pa.array([""] * count), pa.array([""] * count),
    ], names=[f"c{n}" for n in range(16)])
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=False, delimiter="\t",
                                                                 quoting_style="none"))
    chunk = CopyChunk(text=sink.getvalue().to_pybytes(), rows=count)
    _sum_up(chunk, record_type, block.created_at, payout, block.currency, fee_units, net_units)
    return chunk, psp


def _sum_up(chunk: CopyChunk, record_type: pa.Array, created_at: pa.Array, payout: pa.Array, currency: pa.Array,
            fee: pa.Array, net: pa.Array) -> None:
    """What the import sums up of a block: lines per type, latest times, fees per payout and currency."""
    chunk.counts = Counter({item["values"]: item["counts"] for item in pc.value_counts(record_type).to_pylist()})
    latest = pc.max(created_at).as_py()
    chunk.latest = latest.replace(tzinfo=UTC) if latest else None
    payouts = pc.equal(record_type, _PAYOUT)
    latest_payout = pc.max(pc.filter(created_at, payouts)).as_py() if pc.any(payouts).as_py() else None
    chunk.latest_payout = latest_payout.replace(tzinfo=UTC) if latest_payout else None
    amount, fee_bearing = arrow_line_fees(record_type, fee, net)
    fees = pa.table({"payout": payout, "currency": currency, "amount": amount}).filter(fee_bearing)
    for group in fees.group_by(["payout", "currency"]).aggregate([("amount", "sum"), ("amount", "count")]).to_pylist():
        chunk.add_fee(group["payout"], group["currency"], group["amount_sum"], group["amount_count"])
