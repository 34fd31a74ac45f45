"""Domain errors of reconciliation; callers (admin, commands, tasks) turn them into messages."""
from __future__ import annotations


class ReconciliationError(Exception):
    """Base class."""


class SettlementImportError(ReconciliationError):
    """The file cannot be imported at all (unknown format, missing columns, not UTF-8...)."""


class BreakResolutionError(ReconciliationError):
    """A break cannot be resolved as asked (already resolved, no reason, unknown resolution)."""
