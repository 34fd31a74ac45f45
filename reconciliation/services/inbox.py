"""The nightly job: import every new file of the inbox directory, then reconcile."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from reconciliation.exceptions import SettlementImportError
from reconciliation.matching import reconciliation_run
from reconciliation.models import ReconciliationRun

from .importing import ImportResult, settlement_file_import

logger = logging.getLogger(__name__)


@dataclass
class InboxResult:
    imported: list[ImportResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # seen before
    failed: dict[str, str] = field(default_factory=dict)  # name -> why
    run: ReconciliationRun | None = None


def settlement_inbox_process(*, inbox: Path, day: date, actor: str) -> InboxResult:
    """Import the inbox's files (oldest name first; a file seen before is skipped) and reconcile ``day``.

    A file that cannot be imported is reported, never fatal: the others still go in.
    """
    result = InboxResult()
    inbox = Path(inbox)
    paths = sorted(p for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")) if inbox.is_dir() else []
    for path in paths:
        try:
            imported = settlement_file_import(path=path, actor=actor)
        except SettlementImportError as exc:
            logger.warning("event=settlement_file_refused name=%s error=%s", path.name, exc)
            result.failed[path.name] = str(exc)
            continue
        (result.imported if imported.created else result.skipped).append(
            imported if imported.created else path.name)
    result.run = reconciliation_run(day=day, actor=actor)
    return result
