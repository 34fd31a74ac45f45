"""A CSV report read by Apache Arrow a block of lines at a time, converted column by column.

Shared by ``stripe_arrow`` and ``adyen_arrow``; each gives an ``ArrowFormat``: how a block's columns are read
(``block``), which rows the conversions read exactly as the row parser would (``convertible``), the conversion
itself (``converted``) and the row parser (``render``) for the others. For plain files only (``is_plain``), so
that Arrow's rows are the file's lines. Quotes are not Arrow's to read (``quote_char=False``): a row holding one
is always the row parser's, its fields split by ``csv.reader`` as ``csv_rows.iter_csv_rows`` splits them.

Per block: the convertible rows go by column, the odd ones are rendered by the row parser and put back in their
place (line order is kept: the first of twins stays first). A block with a row of another width than the header
(Arrow skips it: ``invalid``) or a blank odd row goes wholly row by row.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .chunks import ChunkBuilder, CopyChunk, ReferencesChecked
from .csv_rows import CsvRow
from .errors import FastPathUnavailable
from .records import RenderedLine

#: Control bytes that would make Arrow's rows differ from the lines or need escaping for COPY (with ``\\``).
_NOT_PLAIN = frozenset(b"\t\r\x00")


class ArrowFormat(Protocol):
    def block(self, batch: pa.RecordBatch) -> Any: ...

    def convertible(self, block: Any) -> pa.Array: ...

    def converted(self, batch: pa.RecordBatch, block: Any, ordinals: pa.Array, numbers: pa.Array,
                  file_id: int) -> tuple[CopyChunk, pa.Array]: ...

    def render(self, rows: Iterable[CsvRow]) -> Iterator[RenderedLine]: ...


_PRINTABLE = bytes(range(0x20, 0x7F))


@dataclass(frozen=True)
class FileBytes:
    """What one pass over a file's bytes found (``scan``)."""

    quote: bool  # a double quote somewhere
    backslash: bool
    others: frozenset[int]  # the bytes that are no printable ASCII character, besides newlines

    def plain(self, *, quotes: bool = False) -> bool:
        """No byte that would make Arrow's rows differ from the file's lines or need escaping for COPY (no
        quote either, unless ``quotes``: its rows then go to the row parser)."""
        return not self.backslash and (quotes or not self.quote) and not self.others & _NOT_PLAIN

    @property
    def printable(self) -> bool:
        """Every line is printable ASCII (a BOM or any control character but the newline makes it false)."""
        return not self.others


def scan(path: Path) -> FileBytes:
    """One pass over the file: quotes, backslashes and the bytes outside printable ASCII (C loops: ``memchr``
    and ``bytes.translate``, about 0.1 s for a million-line report)."""
    quote = backslash = False
    others: set[int] = set()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            quote = quote or b'"' in block
            backslash = backslash or b"\\" in block
            others.update(block.translate(None, _PRINTABLE).translate(None, b"\n"))
    return FileBytes(quote, backslash, frozenset(others))


def is_plain(path: Path, *, quotes: bool = False) -> bool:
    """``scan(path).plain(quotes=quotes)``."""
    return scan(path).plain(quotes=quotes)


def header(path: Path) -> list[str]:
    """The first line's column names; the row-by-row parser looks further, or says the file is empty."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        try:
            line = handle.readline().rstrip("\n")
        except UnicodeDecodeError as exc:
            raise FastPathUnavailable(str(exc)) from exc
    names = _split(line) if '"' in line else line.split(",")
    if not any(name.strip() for name in names):
        raise FastPathUnavailable("no header on the first line")
    return names


def iter_chunks(path: Path, file_id: int, fmt: ArrowFormat, width: int, *, block_bytes: int,
                unique_limit: int) -> Iterator[CopyChunk | ReferencesChecked]:
    """The report's lines as ``CopyChunk``s of rows of ``settlement_line`` for ``file_id``; then, if every
    block was converted by column and it held at most ``unique_limit`` references, whether its PSP references
    are unique. Raises ``FastPathUnavailable`` (possibly after some chunks) when Arrow cannot read the file."""
    invalid: dict[int, str] = {}  # physical line number -> text of a row of another width
    reader = _open_reader(path, width, invalid, block_bytes)
    rows = ChunkBuilder(file_id, size=sys.maxsize)  # flushed once per block
    references: list[pa.Array] | None = []  # other than charges'; None once a block went row by row, or past the limit
    charges: list[pa.Array] | None = []  # the charge lines' references, however read; None past the limit
    kept = 0
    next_line = 2  # the header is line 1
    while (batch := _next_batch(reader)) is not None:
        numbers = _line_numbers(next_line, batch.num_rows, invalid)
        skipped = ([number for number in range(next_line, numbers[-1] + 1) if number in invalid]
                   if numbers and invalid else [])
        if numbers:
            next_line = numbers[-1] + 1
        chunk, psp = (None, None) if skipped else _fast_chunk(batch, numbers, fmt, rows)
        if chunk is None:
            references = None
            chunk = _row_by_row(batch, numbers, skipped, invalid, fmt, rows)
        elif psp is None:  # some rows went row by row: their references are the row parser's
            references = None
        elif references is not None:  # (``psp``: the references of the rows that are not charges)
            references.append(psp)
            kept += len(psp) + len(chunk.charge_references)
            if kept > unique_limit:
                references = None
        if chunk is not None:
            charges = _charges_add(charges, chunk, unique_limit)
            yield chunk
    # Rows of another width after the last valid row.
    tail = sorted(number for number in invalid if number >= next_line)
    if tail:
        references = None
        chunk = _row_by_row(None, [], tail, invalid, fmt, rows)
        if chunk is not None:
            charges = _charges_add(charges, chunk, unique_limit)
            yield chunk
    unique = None if references is None or charges is None else _unique(references + charges)
    del references  # before the twins' sort, and the pool gives back what it can
    twins = [] if unique else None if charges is None else _twins(charges)
    del charges
    if unique is not None or twins is not None:
        yield ReferencesChecked(unique=unique, twins=twins)
    pa.default_memory_pool().release_unused()  # a worker process lives on after the import


def _open_reader(path: Path, width: int, invalid: dict[int, str], block_bytes: int) -> pacsv.CSVStreamingReader:
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
            read_options=pacsv.ReadOptions(use_threads=False, block_size=block_bytes, skip_rows=1,
                                           column_names=names),
            parse_options=pacsv.ParseOptions(quote_char=False, invalid_row_handler=on_invalid,
                                             ignore_empty_lines=False, newlines_in_values=False),
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


#: At most this many twin references are kept on a file (``ReferencesChecked.twins``); past it, matching looks for
#: them in the lines.
TWINS_KEPT = 10_000


def _charges_add(charges: list[pa.Array] | None, chunk: CopyChunk, limit: int) -> list[pa.Array] | None:
    """``charges`` with the chunk's charge references added; ``None`` past ``limit`` references (or unknown)."""
    if charges is None or chunk.charge_references is None:
        return None
    references = chunk.charge_references
    charges.append(references if isinstance(references, pa.Array) else pa.array(references, pa.string()))
    chunk.charge_references = None
    return None if sum(len(block) for block in charges) > limit else charges


def _twins(charges: list[pa.Array]) -> list[str] | None:
    """The references more than one charge line has, sorted; ``None`` past ``TWINS_KEPT``."""
    every = pa.concat_arrays([pa.array([], pa.string()), *charges])
    if len(every) < 2:
        return []
    charges.clear()  # (the caller's list: its blocks go as soon as they are in one array)
    ordered = every.take(pc.sort_indices(every))  # sorted: a twin is equal to its neighbour (less memory than a hash)
    del every
    same = pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))
    twins = pc.unique(pc.filter(ordered.slice(1), same))
    return None if len(twins) > TWINS_KEPT else sorted(twins.to_pylist())


def _line_numbers(start: int, count: int, invalid: dict[int, str]) -> Sequence[int]:
    """Physical line numbers of ``count`` valid rows from ``start`` on, past the invalid ones."""
    if not invalid or max(invalid) < start:
        return range(start, start + count)
    numbers, number = [], start
    while len(numbers) < count:
        if number not in invalid:
            numbers.append(number)
        number += 1
    return numbers


class _OneLine:
    """Gives ``csv.reader`` one line, and tells whether it asked for another (a quote left open)."""

    __slots__ = ("asked", "line")

    def __init__(self, line: str) -> None:
        self.line: str | None = line
        self.asked = 0

    def __iter__(self) -> _OneLine:
        return self

    def __next__(self) -> str:
        self.asked += 1
        if self.line is None:
            raise StopIteration
        line, self.line = self.line, None
        return line


def _split(text: str) -> list[str]:
    """A line with a quote, split as ``csv_rows.iter_csv_rows`` splits it; ``FastPathUnavailable`` when a
    quoted value goes on past the line (the row parser reads the next lines into it)."""
    tap = _OneLine(text + "\n")
    fields = next(csv.reader(tap, strict=False))
    if tap.asked > 1:
        raise FastPathUnavailable("a quoted value spans lines")
    return fields


def _csv_row(number: int, text: str) -> CsvRow | None:
    """The line ``number`` as the row parser reads it; ``None`` for a blank one (no row)."""
    raw = text + "\n"
    if '"' not in text:
        return CsvRow(number, text.split(","), raw) if text.replace(",", "").strip() else None
    try:
        fields = _split(text)
    except csv.Error as exc:
        return CsvRow(number, [], raw, f"not a valid CSV line: {exc}")
    return CsvRow(number, fields, raw) if any(field.strip() for field in fields) else None


def _row_by_row(batch: pa.RecordBatch | None, numbers: Sequence[int], skipped: list[int], invalid: dict[int, str],
                fmt: ArrowFormat, rows: ChunkBuilder) -> CopyChunk | None:
    """A block the row parser renders: its rows and the invalid rows among them, in line order."""
    texts = []
    if batch is not None:
        values = [column.to_pylist() for column in batch.columns]
        texts = [(number, ",".join(value[index] for value in values)) for index, number in enumerate(numbers)]
    texts.extend((number, invalid.pop(number)) for number in skipped)
    texts.sort(key=lambda item: item[0])
    items = [item for number, text in texts if (item := _csv_row(number, text)) is not None]
    for rendered in fmt.render(items):
        rows.add(rendered)
    return rows.flush()


def _fast_chunk(batch: pa.RecordBatch, numbers: Sequence[int], fmt: ArrowFormat,
                rows: ChunkBuilder) -> tuple[CopyChunk | None, pa.Array | None]:
    """The block converted column by column, with its PSP references but its charges' (``charge_references``); the
    few rows the conversions are not sure of rendered by the row parser in their place (then no references:
    ``None``). ``(None, None)`` when the block has no row to convert, or a blank odd row (it is no line: the
    ordinals after it move)."""
    count = batch.num_rows
    if count == 0:
        return None, None
    block = fmt.block(batch)
    convertible = fmt.convertible(block)
    odd = pc.indices_nonzero(pc.invert(convertible)).to_pylist()
    first_ordinal = rows.ordinal + 1
    ordinals = _counting(first_ordinal, count)
    line_numbers = (_counting(numbers[0], count) if numbers[-1] - numbers[0] + 1 == count
                    else pa.array(numbers, pa.int64()))
    if not odd:
        rows.ordinal += count
        return fmt.converted(batch, block, ordinals, line_numbers, rows.file_id)
    if len(odd) == count:
        return None, None
    items = _csv_rows(batch, odd, numbers)
    if any(item is None for item in items):
        return None, None
    good = type(block)(*(None if (value := getattr(block, field.name)) is None else pc.filter(value, convertible)
                         for field in fields(block)))
    chunk, _ = fmt.converted(batch.filter(convertible), good, ordinals.filter(convertible),
                             line_numbers.filter(convertible), rows.file_id)
    for position, line in zip(odd, fmt.render(items), strict=True):
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
    chunk.charge_references = pa.concat_arrays([chunk.charge_references,
                                                pa.array(odd_chunk.charge_references, pa.string())])
    return chunk, None


_COUNT = pa.array(range(1 << 14), pa.int64())


def _counting(start: int, count: int) -> pa.Array:
    """``start, start + 1, ...``: ``count`` integers (``pa.array(range(...))`` converts each one in Python, 2 ms
    a block; this adds ``start`` to a slice of numbers made once)."""
    global _COUNT
    numbers = _COUNT  # read once: another import's thread may replace it meanwhile
    if len(numbers) < count:
        numbers = _COUNT = pa.array(range(count), pa.int64())
    return pc.add(numbers.slice(0, count), start)


def _csv_rows(batch: pa.RecordBatch, positions: list[int], numbers: Sequence[int]) -> list[CsvRow | None]:
    """The rows at ``positions`` as the row parser reads them (``None`` for a blank one)."""
    taken = pa.array(positions)
    values = [column.take(taken).to_pylist() for column in batch.columns]
    return [_csv_row(numbers[position], ",".join(value[n] for value in values))
            for n, position in enumerate(positions)]
