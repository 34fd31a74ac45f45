"""Settlement lines rendered for ``COPY``, a chunk at a time, with what an import sums up.

A chunk's ``text`` is rows of ``settlement_line`` in PostgreSQL's COPY text format:
``file_id``, ``ordinal`` and then ``records.LINE_ROW_FIELDS``, tab-separated, one per line.
Parsers build chunks in file order, ordinals counting from 1.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciliation.record_types import RecordType

from .fees import line_fee
from .records import RenderedLine

_PAYOUT = RecordType.PAYOUT.value
_CHARGE = RecordType.CHARGE.value


@dataclass
class CopyChunk:
    text: str
    rows: int
    counts: Counter[str] = field(default_factory=Counter)  # per record type
    latest: datetime | None = None  # the latest occurred_at
    latest_payout: datetime | None = None  # the latest occurred_at of a payout row
    #: ``(payout_reference, currency) -> [fee total, lines]`` of the lines that bear a fee (``fees``).
    fees: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    #: The non-empty PSP references of the chunk's charge lines (a list, or an Arrow array), when its parser
    #: collected them (``arrow_blocks``: for ``ReferencesChecked.twins``); not summed by ``absorb``.
    charge_references: Any = None

    def add_fee(self, payout_reference: str, currency: str, amount: int, lines: int = 1) -> None:
        total = self.fees.get((payout_reference, currency))
        if total is None:
            self.fees[(payout_reference, currency)] = [amount, lines]
        else:
            total[0] += amount
            total[1] += lines

    def absorb(self, other: CopyChunk) -> None:
        """Adds ``other``'s rows and sums to this one's (its text is not kept)."""
        self.rows += other.rows
        self.counts.update(other.counts)
        for (payout_reference, currency), (total, lines) in other.fees.items():
            self.add_fee(payout_reference, currency, total, lines)
        if other.latest is not None and (self.latest is None or other.latest > self.latest):
            self.latest = other.latest
        if other.latest_payout is not None and (self.latest_payout is None
                                                or other.latest_payout > self.latest_payout):
            self.latest_payout = other.latest_payout

    def seen_at(self, record_type: str, occurred_at: datetime | None) -> None:
        if occurred_at is None:
            return
        if self.latest is None or occurred_at > self.latest:
            self.latest = occurred_at
        if record_type == _PAYOUT and (self.latest_payout is None or occurred_at > self.latest_payout):
            self.latest_payout = occurred_at


class ChunkBuilder:
    """Collects rendered lines (``records.RenderedLine``) of one file into chunks of ``size`` rows."""

    def __init__(self, file_id: int, size: int = 2000) -> None:
        self.file_id = file_id
        self.size = size
        self.ordinal = 0
        self._new()

    def _new(self) -> None:
        self._rows: list[str] = []
        self._chunk = CopyChunk(text="", rows=0, charge_references=[])

    def add(self, rendered: RenderedLine) -> CopyChunk | None:
        """Adds a line; returns a chunk when one is full."""
        record_type = rendered.record_type
        self.ordinal += 1
        chunk = self._chunk
        chunk.counts[record_type] += 1
        if (amount := line_fee(record_type, rendered.fee, rendered.net)) is not None:
            chunk.add_fee(rendered.payout_reference, rendered.currency, amount)
        chunk.seen_at(record_type, rendered.occurred_at)
        if record_type == _CHARGE and rendered.psp_reference:
            chunk.charge_references.append(rendered.psp_reference)
        self._rows.append(f"{self.file_id}\t{self.ordinal}\t{rendered.text}")
        return self.flush() if len(self._rows) >= self.size else None

    def flush(self) -> CopyChunk | None:
        """The chunk being built, if it has rows."""
        if not self._rows:
            return None
        chunk = self._chunk
        chunk.text, chunk.rows = "".join(self._rows), len(self._rows)
        self._new()
        return chunk


@dataclass(frozen=True)
class ReferencesChecked:
    """Yielded after a file's chunks when the parser checked its PSP references: ``unique`` is
    true when no two lines share one (matching then need not look for duplicates within it; ``None``: not
    checked); ``twins``, when not ``None``, the references two charge lines or more have (sorted), which is what
    matching would otherwise look for in the file's lines."""

    unique: bool | None
    twins: list[str] | None = None
