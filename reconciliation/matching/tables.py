"""The tables matching's SQL reads and writes, by their database names.

Django names our tables and payments names its view, so the SQL takes them from here
(``FROM {LINES} line``). A run's own temporary tables are named in the SQL itself:
``recon_candidate`` (``candidates``), ``recon_reopened`` and ``recon_settled`` (``history``), ``recon_skipped``
(``unchanged``) and ``recon_outcome`` (``outcomes``), all dropped at commit.
"""
from __future__ import annotations

from payments import selectors as payment_selectors
from reconciliation.models import (
    Break,
    BreakResolution,
    LineDecision,
    SettlementFile,
    SettlementLine,
    SettlementMatch,
)

LINES = SettlementLine._meta.db_table
FILES = SettlementFile._meta.db_table
MATCHES = SettlementMatch._meta.db_table
BREAKS = Break._meta.db_table
BREAK_AUDIT = BreakResolution._meta.db_table
DECISIONS = LineDecision._meta.db_table
#: Payments' read-only view of its orders (``payments.models.SettleableOrder``).
ORDERS = payment_selectors.settleable_order_view()


def line_break_key(break_class: str, line_id: str) -> str:
    """The SQL of a line break's key (``<class>:line:<line id>``, ``Break.key``) from two SQL expressions."""
    return f"{break_class} || ':line:' || {line_id}"
