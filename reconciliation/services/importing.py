"""Importing a settlement report or bank statement: streamed, batched with COPY, idempotent per file."""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from queue import Full, Queue
from typing import TypeVar

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from reconciliation.exceptions import SettlementImportError
from reconciliation.importers import (
    LINE_ROW_FIELDS,
    CopyChunk,
    FastPathUnavailable,
    FileHeader,
    ImportFormatError,
    ReferencesChecked,
    UnsupportedFormat,
    detect_format,
    iter_copy_chunks,
)
from reconciliation.models import SettlementFile, SettlementLine
from reconciliation.record_types import RecordType

from .staging import STAGED_TABLE, StagedLines, StagingUnavailable

logger = logging.getLogger(__name__)
_Produced = TypeVar("_Produced")

MAX_STATEMENT_HEADERS = 1000  # kept on the file; a statement file has a handful
_COLUMNS = ", ".join(("file_id", "ordinal", *LINE_ROW_FIELDS))
_LINES = SettlementLine._meta.db_table
#: A file's lines are staged (``COPY``: by a second connection, ``staging``, or here when it cannot be had), then
#: inserted sorted by PSP reference, so that each leaf page of the reference index is read once for all its new keys
#: rather than once per line (a random page per line once the index outgrows the cache). At 1M Stripe lines this
#: cut the import's backend CPU from 13.6-18.0 s to 7.4-8.7 s with nine nights before, and from 7.4-8.7 s to
#: 6.3-6.8 s with none. Their ids are then drawn in reference order: a file's own order is ``ordinal`` (matching
#: reads it so, never the id). The staged table takes the lines' columns, collation included: the sort is in the
#: index's order ("C", migration 0015: no ``strcoll``, abbreviated keys), 6.7 -> 5.2 s of the ``INSERT``'s backend
#: CPU at ten nights (means of four runs each). The temporary table of the import on one connection:
_STAGED = "recon_import_line"
#: The lines' reference index, whose size decides whether a file is staged and sorted (``_sorted_insert``).
_REFERENCE_INDEX = "settlement_line_psp_ref"


@dataclass(frozen=True)
class ImportResult:
    file: SettlementFile
    created: bool  # False: the same bytes were imported before, nothing changed
    lines: int
    malformed: int


def file_sha256(path: Path) -> str:
    return _digested(path)[0]


def _digested(path: Path) -> tuple[str, int]:
    """The file's SHA-256 and how many newlines it holds (about its lines: ``staging`` sizes its slices by it)."""
    digest, newlines = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            newlines += chunk.count(b"\n")
    return digest.hexdigest(), newlines


def settlement_file_import(
    *,
    path: Path,
    actor: str,
    fmt: str = "auto",
    name: str | None = None,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 100_000,
) -> ImportResult:
    """Import ``path`` once per content hash; a file seen before changes nothing.

    Every record and every malformed line (with its reason) becomes a ``SettlementLine``,
    written with ``COPY`` in one transaction: a file that cannot be read at all raises
    ``SettlementImportError`` and leaves nothing behind. Matching is ``reconciliation_run``'s job.
    ``progress(lines)`` may be called from another thread (``staging``): it must not use the database.
    """
    path = Path(path)
    try:
        fmt = detect_format(path) if fmt == "auto" else fmt
        size = path.stat().st_size
    except (UnsupportedFormat, OSError) as exc:
        raise SettlementImportError(str(exc)) from exc
    sha, newlines = _digested(path)
    existing = SettlementFile.objects.filter(sha256=sha).first()
    if existing is not None:
        return ImportResult(existing, False, existing.line_count, existing.malformed_count)
    try:
        with transaction.atomic():
            settlement_file = SettlementFile.objects.create(
                sha256=sha, name=(name or path.name)[:255], format=fmt, size=size, imported_by=actor[:100]
            )
            _copy_lines(settlement_file, path, fmt, progress, progress_every, newlines)
    except IntegrityError:  # a concurrent import of the same bytes won
        existing = SettlementFile.objects.get(sha256=sha)
        return ImportResult(existing, False, existing.line_count, existing.malformed_count)
    except (ImportFormatError, UnsupportedFormat) as exc:
        raise SettlementImportError(f"{path.name}: {exc}") from exc
    logger.info("event=settlement_file_imported file_id=%s name=%s format=%s lines=%s malformed=%s actor=%s",
                settlement_file.pk, settlement_file.name, fmt, settlement_file.line_count,
                settlement_file.malformed_count, actor)
    return ImportResult(settlement_file, True, settlement_file.line_count, settlement_file.malformed_count)


def _copy_lines(settlement_file: SettlementFile, path: Path, fmt: str,
                progress: Callable[[int], None] | None, progress_every: int, newlines: int) -> None:
    """The file's lines into ``settlement_line``: ``COPY ... FROM STDIN`` a chunk at a time, staged then inserted
    sorted by PSP reference once the reference index is large (``_sorted_insert``, ``_staged_and_inserted``), else
    directly.

    A plain Stripe report is read by Arrow; should Arrow give up part-way, what it wrote is
    rolled back (a savepoint) and the file is read again row by row.
    """
    try:
        with transaction.atomic():
            _copy_chunks(settlement_file, path, fmt, progress, progress_every, fast=True, newlines=newlines)
    except FastPathUnavailable as exc:
        logger.info("event=settlement_import_row_by_row file_id=%s reason=%s", settlement_file.pk, exc)
        _copy_chunks(settlement_file, path, fmt, progress, progress_every, fast=False, newlines=newlines)


def _copy_chunks(settlement_file: SettlementFile, path: Path, fmt: str, progress: Callable[[int], None] | None,
                 progress_every: int, *, fast: bool, newlines: int) -> None:
    total = CopyChunk(text="", rows=0)  # what the file's chunks sum up to

    def produce(write: Callable[[CopyChunk], None]) -> tuple[list[dict], ReferencesChecked]:
        return _chunks_written(write, settlement_file, path, fmt, total, progress, progress_every, fast=fast)

    with connection.cursor() as cursor, ExitStack() as leaving:
        if _sorted_insert(cursor):
            statements, checked = _staged_and_inserted(cursor, settlement_file.pk, produce, leaving, newlines)
        else:
            with cursor.cursor.copy(f"COPY {_LINES} ({_COLUMNS}) FROM STDIN") as copy:
                statements, checked = produce(lambda chunk: copy.write(chunk.text))
        # The new lines' page ranges summarized in the BRIN index on ``file`` (unsummarized ranges match every
        # file, so matching's scans of a night's lines would read every night not yet vacuumed), and fresh
        # statistics (a small sample) so that matching plans its joins for the lines just added. Both need the
        # table's owner: a function of the owner's does them (migration 0008), as the app role owns nothing.
        cursor.execute("SET LOCAL default_statistics_target = 10")
        cursor.execute("SELECT reconciliation_settlement_lines_refresh()")
        cursor.execute("RESET default_statistics_target")
    settlement_file.line_count = total.rows
    settlement_file.malformed_count = total.counts.get(RecordType.MALFORMED, 0)
    settlement_file.counts_by_type = dict(sorted(total.counts.items()))
    settlement_file.statements = statements
    settlement_file.settled_at = total.latest_payout or total.latest
    settlement_file.fees = [[payout, currency, amount, count]
                            for (payout, currency), (amount, count) in sorted(total.fees.items())]
    settlement_file.unique_references = checked.unique
    settlement_file.twin_references = checked.twins
    settlement_file.save(update_fields=[
        "line_count", "malformed_count", "counts_by_type", "statements", "settled_at", "fees", "unique_references",
        "twin_references"])


def _staged_and_inserted(cursor, file_id: int, produce: Callable[[Callable[[CopyChunk], None]], _Produced],
                         leaving: ExitStack, newlines: int) -> _Produced:
    """The file's lines staged by a second connection (``staging.StagedLines``, left to ``leaving``) and inserted
    into ``settlement_line`` a landed slice at a time, each sorted by PSP reference; staged on this connection
    (``_staged_here``) when ``RECONCILIATION_IMPORT_STAGED_ASIDE`` is off or no second connection can be had."""
    if not settings.RECONCILIATION_IMPORT_STAGED_ASIDE:
        return _staged_here(cursor, produce)
    try:
        staged = leaving.enter_context(StagedLines(file_id, _COLUMNS, produce, lines_about=newlines))
    except StagingUnavailable as exc:
        logger.warning("event=settlement_import_staging_unavailable file_id=%s error=%s", file_id, exc)
        return _staged_here(cursor, produce)
    inserted = 0
    for after, up_to in staged.slices():
        cursor.execute(f"INSERT INTO {_LINES} ({_COLUMNS}) SELECT {_COLUMNS} FROM {STAGED_TABLE} "
                       "WHERE file_id = %s AND ordinal > %s AND ordinal <= %s ORDER BY psp_reference",
                       [file_id, after, up_to])
        inserted += cursor.rowcount
    staged.finished()
    if inserted != staged.rows:  # the ranges assume ordinals 1..n in chunk order (``chunks``)
        raise SettlementImportError(f"file {file_id}: {staged.rows} lines staged, {inserted} inserted")
    return staged.result()


def _staged_here(cursor, produce: Callable[[Callable[[CopyChunk], None]], _Produced]) -> _Produced:
    """The file's lines staged in a temporary table on the import's connection, then inserted in one ``INSERT``
    sorted by PSP reference once the whole file is parsed."""
    cursor.execute(f"DROP TABLE IF EXISTS {_STAGED}")
    cursor.execute(f"CREATE TEMP TABLE {_STAGED} ON COMMIT DROP AS SELECT {_COLUMNS} FROM {_LINES} WITH NO DATA")
    with cursor.cursor.copy(f"COPY {_STAGED} ({_COLUMNS}) FROM STDIN") as copy:
        produced = produce(lambda chunk: copy.write(chunk.text))
    cursor.execute(f"INSERT INTO {_LINES} ({_COLUMNS}) SELECT {_COLUMNS} FROM {_STAGED} ORDER BY psp_reference")
    cursor.execute(f"DROP TABLE {_STAGED}")
    return produced


def _sorted_insert(cursor) -> bool:
    """Whether the file's lines are staged and inserted sorted by PSP reference: once the lines' reference index is
    larger than ``RECONCILIATION_IMPORT_SORTED_ABOVE_BYTES`` (unset: PostgreSQL's ``shared_buffers``). Below that its
    pages stay cached, and a direct ``COPY`` overlaps the parse: one night of a 1M-line Adyen report imported in
    5.0-5.9 s directly against 7.2-7.3 s staged; at ten nights staging halves the import's backend CPU."""
    cursor.execute("SELECT pg_relation_size(%s::regclass), pg_size_bytes(current_setting('shared_buffers'))",
                   [_REFERENCE_INDEX])
    size, shared_buffers = cursor.fetchone()
    above = settings.RECONCILIATION_IMPORT_SORTED_ABOVE_BYTES
    return size > (shared_buffers if above is None else above)


def _chunks_written(write: Callable[[CopyChunk], None], settlement_file: SettlementFile, path: Path, fmt: str,
                    total: CopyChunk, progress: Callable[[int], None] | None, progress_every: int, *,
                    fast: bool) -> tuple[list[dict], ReferencesChecked]:
    """The file's chunks passed to ``write`` and summed into ``total``; returns the statements' headers and
    what the parser found of the references (``None`` in it: not checked)."""
    statements: list[dict] = []
    checked = ReferencesChecked(unique=None)
    reported = 0
    # The next chunks are parsed in a thread while PostgreSQL takes this one.
    for item in _read_ahead(iter_copy_chunks(path, fmt, settlement_file.pk, fast=fast)):
        if isinstance(item, ReferencesChecked):
            checked = item
            continue
        if isinstance(item, FileHeader):
            if len(statements) < MAX_STATEMENT_HEADERS:
                statements.append({
                    "statement_id": item.statement_id, "account": item.account, "currency": item.currency,
                    "opening_balance": item.opening_balance, "closing_balance": item.closing_balance,
                })
            continue
        write(item)
        total.absorb(item)
        if progress is not None and total.rows // progress_every > reported:
            reported = total.rows // progress_every
            progress(total.rows)
    return statements, checked


_END = object()


def _read_ahead(items: Iterator, depth: int = 2) -> Iterator:
    """``items``, produced by a thread at most ``depth`` items ahead (exceptions re-raised here)."""
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.1)
                return True
            except Full:
                continue
        return False  # the consumer is gone

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except Exception as exc:  # noqa: BLE001 - re-raised by the consumer
            put((_END, exc))

    producer = threading.Thread(target=produce, name="settlement-import-parser", daemon=True)
    producer.start()
    try:
        while True:
            item, error = queue.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        producer.join()
