"""Writes of reconciliation: import, match and book, resolve, correct under maker-checker.

Views, admin, tasks and commands call these.

Matching and booking are the ``reconciliation.matching`` package, re-exported here.
"""
from reconciliation.matching import fee_posting_key, payout_posting_key, reconciliation_run

from .breaks import OPERATOR_RESOLUTIONS, break_assign, break_note_add, break_resolve
from .corrections import ADJUSTMENTS, CORRECTABLE_CLASSES, correction_approve, correction_propose, correction_reject
from .importing import ImportResult, file_sha256, settlement_file_import
from .inbox import InboxResult, settlement_inbox_process

__all__ = [
    "ADJUSTMENTS",
    "CORRECTABLE_CLASSES",
    "OPERATOR_RESOLUTIONS",
    "ImportResult",
    "InboxResult",
    "break_assign",
    "break_note_add",
    "break_resolve",
    "correction_approve",
    "correction_propose",
    "correction_reject",
    "fee_posting_key",
    "file_sha256",
    "payout_posting_key",
    "reconciliation_run",
    "settlement_file_import",
    "settlement_inbox_process",
]
