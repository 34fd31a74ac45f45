"""Importing a settlement report or bank statement: streamed, batched with COPY, idempotent per file."""
from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.db import IntegrityError, connection, transaction

from reconciliation.exceptions import SettlementImportError
from reconciliation.importers import (
    LINE_ROW_FIELDS,
    FileHeader,
    ImportFormatError,
    UnsupportedFormat,
    detect_format,
    iter_rendered_lines,
)
from reconciliation.models import SettlementFile, SettlementLine

logger = logging.getLogger(__name__)

MAX_STATEMENT_HEADERS = 1000  # kept on the file; a statement file has a handful
_LINE_COLUMNS = ("file_id", "ordinal", *LINE_ROW_FIELDS)


@dataclass(frozen=True)
class ImportResult:
    file: SettlementFile
    created: bool  # False: the same bytes were imported before, nothing changed
    lines: int
    malformed: int


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


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
    """
    path = Path(path)
    try:
        fmt = detect_format(path) if fmt == "auto" else fmt
        size = path.stat().st_size
    except (UnsupportedFormat, OSError) as exc:
        raise SettlementImportError(str(exc)) from exc
    sha = file_sha256(path)
    existing = SettlementFile.objects.filter(sha256=sha).first()
    if existing is not None:
        return ImportResult(existing, False, existing.line_count, existing.malformed_count)
    try:
        with transaction.atomic():
            settlement_file = SettlementFile.objects.create(
                sha256=sha, name=(name or path.name)[:255], format=fmt, size=size, imported_by=actor[:100]
            )
            _copy_lines(settlement_file, path, fmt, progress, progress_every)
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
                progress: Callable[[int], None] | None, progress_every: int) -> None:
    """Stream the file's line rows into ``COPY ... FROM STDIN`` (text format), a few thousand at a time."""
    counts: Counter[str] = Counter()
    statements: list[dict] = []
    latest: datetime | None = None
    latest_payout: datetime | None = None
    ordinal = 0
    file_id = settlement_file.pk
    table = SettlementLine._meta.db_table
    batch: list[str] = []
    fee_totals: dict[tuple[str, str], list[int]] = {}
    sql = f"COPY {table} ({', '.join(_LINE_COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor:
        with cursor.cursor.copy(sql) as copy:
            for item in iter_rendered_lines(path, fmt):
                if isinstance(item, FileHeader):
                    if len(statements) < MAX_STATEMENT_HEADERS:
                        statements.append({
                            "statement_id": item.statement_id, "account": item.account, "currency": item.currency,
                            "opening_balance": item.opening_balance, "closing_balance": item.closing_balance,
                        })
                    continue
                ordinal += 1
                record_type, occurred_at, payout_reference, currency, fee, net, text = item
                counts[record_type] += 1
                if record_type not in _NOT_FEE_BEARING:
                    total = fee_totals.get((payout_reference, currency))
                    amount = (fee or 0) - (net or 0 if record_type == "fee" else 0)
                    fee_totals[(payout_reference, currency)] = (
                        [amount, 1] if total is None else [total[0] + amount, total[1] + 1])
                if occurred_at is not None:
                    if latest is None or occurred_at > latest:
                        latest = occurred_at
                    if record_type == "payout" and (latest_payout is None or occurred_at > latest_payout):
                        latest_payout = occurred_at
                batch.append(f"{file_id}\t{ordinal}\t{text}")
                if len(batch) >= _COPY_BATCH:
                    copy.write("".join(batch))
                    batch.clear()
                if progress is not None and ordinal % progress_every == 0:
                    progress(ordinal)
            if batch:
                copy.write("".join(batch))
        # Fresh statistics, so that matching plans its joins for the lines just added.
        cursor.execute(f"ANALYZE {table}")
    settlement_file.line_count = ordinal
    settlement_file.malformed_count = counts.get("malformed", 0)
    settlement_file.counts_by_type = dict(sorted(counts.items()))
    settlement_file.statements = statements
    settlement_file.settled_at = latest_payout or latest
    settlement_file.fees = [[payout, currency, total, lines]
                            for (payout, currency), (total, lines) in sorted(fee_totals.items())]
    settlement_file.save(update_fields=[
        "line_count", "malformed_count", "counts_by_type", "statements", "settled_at", "fees"])


_COPY_BATCH = 2000
# A line's fee is its ``fee`` column, and a fee row's own (negative) net (see matching's ``_post_fees``).
_NOT_FEE_BEARING = frozenset({"payout", "bank_credit", "bank_debit", "malformed"})


# The same, summed from the lines of a file imported before the import summed them up.
_FEE_TOTALS = """
SELECT l.payout_reference, l.currency,
       SUM(COALESCE(l.fee, 0) + CASE WHEN l.record_type = 'fee' THEN -l.net ELSE 0 END), count(*)
FROM {table} l
WHERE l.file_id = %s AND l.record_type NOT IN ('payout', 'bank_credit', 'bank_debit', 'malformed')
GROUP BY 1, 2 ORDER BY 1, 2
"""


def file_fee_totals(cursor, file_id: int) -> list[list]:
    """``[[payout_reference, currency, fee total (minor units), lines], ...]`` of one file's lines."""
    cursor.execute(_FEE_TOTALS.format(table=SettlementLine._meta.db_table), [file_id])
    return [[payout, currency, int(total or 0), count] for payout, currency, total, count in cursor.fetchall()]
