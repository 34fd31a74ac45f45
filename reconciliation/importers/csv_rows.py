"""Streaming CSV reports: rows with their physical line numbers, columns looked up by header name."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ImportFormatError, RowError
from .text import excerpt


@dataclass(slots=True)
class CsvRow:
    """One row of a CSV file as read, before its fields mean anything."""

    line_number: int  # physical line the row starts on, 1-based
    fields: list[str]
    raw: str  # the row's text, every physical line of it
    error: str | None = None  # the csv module could not split the line

    @property
    def source_line(self) -> str:
        return excerpt(self.raw)


class _LineTap:
    """Feeds lines to ``csv.reader``, starting with ``pending``, and keeps the raw lines of the current row."""

    __slots__ = ("_lines", "lines", "pending")

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.lines: list[str] = []
        self.pending: str | None = None

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        if self.pending is not None:
            line, self.pending = self.pending, None
            return line
        line = next(self._lines)
        self.lines.append(line)
        return line


def iter_csv_rows(path: Path) -> Iterator[CsvRow]:
    """Non-blank CSV rows, the header included.

    Tolerates a UTF-8 BOM, CRLF or CR line ends and quoted fields spanning lines. A line
    without quotes (nearly every line of a report) is split on commas directly, which is
    what ``csv.reader`` makes of it; any other line goes through ``csv.reader``.
    """
    with open(path, encoding="utf-8-sig", newline="") as handle:
        lines = _utf8_lines(handle, path)
        tap = _LineTap(lines)
        reader = csv.reader(tap, strict=False)
        consumed = 0
        for line in lines:
            consumed += 1
            if '"' not in line and "\x00" not in line:
                if line.replace(",", "").strip():  # not blank (or only separators)
                    yield CsvRow(consumed, line.rstrip("\r\n").split(","), line)
                continue
            # The csv module reads this row from this line on, and from more lines while a quote is open.
            start = consumed
            tap.lines = [line]
            tap.pending = line
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                consumed = start + len(tap.lines) - 1
                yield CsvRow(start, [], "".join(tap.lines), f"not a valid CSV line: {exc}")
                continue
            consumed = start + len(tap.lines) - 1
            if any(field.strip() for field in fields):
                yield CsvRow(start, fields, "".join(tap.lines))


def _utf8_lines(handle, path: Path) -> Iterator[str]:
    """The file's lines; ``ImportFormatError`` where it stops being UTF-8."""
    number = 0
    while True:
        try:
            line = next(handle)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise ImportFormatError(f"{path.name}: not UTF-8 text near line {number + 1}: {exc.reason}") from None
        number += 1
        yield line


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


class Columns:
    """Header-name lookup for a CSV row: columns are never read by position."""

    def __init__(self, header: Sequence[str], required: Iterable[str], fmt: str) -> None:
        self.names = [" ".join(name.split()) for name in header]
        self._index: dict[str, int] = {}
        self._positions: dict[str, int | None] = {}  # lookups by the caller's spelling
        for position, name in enumerate(self.names):
            self._index.setdefault(_key(name), position)
        missing = [name for name in required if _key(name) not in self._index]
        if missing:
            raise ImportFormatError(f"{fmt} file is missing required column(s): {', '.join(missing)}")
        # Width of the header without trailing empty column names.
        width = len(self.names)
        while width and not self.names[width - 1]:
            width -= 1
        self.width = width

    def __contains__(self, name: str) -> bool:
        return _key(name) in self._index

    def position(self, name: str) -> int | None:
        return self._index.get(_key(name))

    def get(self, row: CsvRow, name: str) -> str | None:
        """The stripped value of column ``name``; ``None`` if absent or empty."""
        try:
            position = self._positions[name]
        except KeyError:
            position = self._positions[name] = self._index.get(_key(name))
        if position is None or position >= len(row.fields):
            return None
        return row.fields[position].strip() or None

    def check_width(self, row: CsvRow) -> None:
        """``RowError`` unless the row has a field for every named column.

        Extra trailing fields are tolerated only when empty (Adyen writes them).
        """
        if row.error:
            raise RowError(row.error)
        got = len(row.fields)
        if got < self.width:
            raise RowError(f"expected {self.width} columns, got {got}: fields are missing")
        if got > len(self.names) and any(f.strip() for f in row.fields[len(self.names) :]):
            raise RowError(f"expected {len(self.names)} columns, got {got}")
