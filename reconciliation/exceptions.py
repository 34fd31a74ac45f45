"""Domain errors of reconciliation; callers (admin, commands, tasks) turn them into messages."""
from __future__ import annotations

from core.exceptions import Conflict, InvalidRequest


class ReconciliationError(Exception):
    """Base class."""


class SettlementImportError(ReconciliationError):
    """The file cannot be imported at all (unknown format, missing columns, not UTF-8...)."""


class BreakResolutionError(ReconciliationError):
    """A break cannot be resolved as asked (already resolved, no reason, unknown resolution)."""


class BreakWorkError(ReconciliationError, InvalidRequest):
    """A note or an owner change that cannot be made as asked (no text or reason, not an operator, not open)."""

    code = "break_work_invalid"


class CorrectionInvalid(ReconciliationError, InvalidRequest):
    """A correction that can never be made as asked (no reason, unknown adjustment, a break without money)."""

    code = "correction_invalid"


class SelfApprovalRefused(CorrectionInvalid):
    """Maker-checker: the operator who proposed a correction may not approve it."""

    code = "correction_self_approval"


class CorrectionConflict(ReconciliationError, Conflict):
    """The correction or its break moved on (already decided, not open, another proposal pending)."""

    code = "correction_conflict"
