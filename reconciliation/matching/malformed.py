"""Step 5: malformed lines, each a ``malformed_line`` break until the PSP sends the line again readable."""
from __future__ import annotations

from django.db.backends.utils import CursorWrapper

from reconciliation.models import BreakClass, MatchState
from reconciliation.record_types import RecordType

from . import rules
from .history import open_lines
from .scope import RunScope

_DECIDE = f"""
INSERT INTO recon_outcome (line_id, match_state, break_class, description, is_new)
SELECT line.id, '{MatchState.MALFORMED}', '{BreakClass.MALFORMED_LINE}', {rules.MALFORMED_LINE_DESCRIPTION}, line.is_new
FROM {open_lines(reopened=MatchState.MALFORMED)} line WHERE line.record_type = '{RecordType.MALFORMED}'
  AND NOT EXISTS (SELECT 1 FROM recon_outcome outcome WHERE outcome.line_id = line.id)
"""


def malformed_lines_decide(cursor: CursorWrapper, scope: RunScope) -> None:
    """An outcome for every open malformed line: new ones, and those earlier runs left malformed."""
    cursor.execute(_DECIDE, scope.params)
