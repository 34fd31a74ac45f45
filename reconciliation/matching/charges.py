"""Step 2: the charge-like candidates decided at once, by the break rules (``rules.CHARGE_LINE_BREAK``).

A candidate gets an outcome when it is not clean, or when it may be a duplicate: its reference
is settled by several open lines (``twins``: ``candidates`` keeps each group of them whole),
or its order by a line an earlier run matched (``history.CANDIDATES_SETTLED_BEFORE``). A new
line matched by its PSP reference with no break gets none (it is only counted); with a timing
break it gets one, ``by_reference``, for its break only.
"""
from __future__ import annotations

from django.db.backends.utils import CursorWrapper

from reconciliation.models import BreakClass
from reconciliation.record_types import RecordType, sql_list

from . import rules
from .history import CANDIDATES_SETTLED_BEFORE
from .scope import RunScope
from .tables import FILES

#: SQL (over ``classified``): the order the candidate found, as ``unchanged`` compares it on the next run.
_FINGERPRINT = rules.order_fingerprint("order_id", "expected", "expected_currency", "order_state", "completed_at",
                                       "order_psp_reference")

_DECIDE = f"""
WITH twins AS (  -- a reference settled more than once among the open lines: the first in line order counts
    SELECT dup_key, min(ARRAY[file_id, ordinal]) AS first_line FROM recon_candidate
    WHERE record_type = '{RecordType.CHARGE}' AND dup_key IS NOT NULL
    GROUP BY dup_key HAVING count(*) > 1
),
settled_before AS (  -- ... or an order settled already by a line an earlier run matched
    {CANDIDATES_SETTLED_BEFORE}
),
classified AS (  -- the lines that are not clean, and the possible duplicates
    SELECT cand.*, file.settled_at, {rules.CHARGE_LINE_BREAK} AS break_class
    FROM recon_candidate cand
    LEFT JOIN twins twin ON twin.dup_key = cand.dup_key
    LEFT JOIN settled_before ON settled_before.id = cand.id
    JOIN {FILES} file ON file.id = cand.file_id
    WHERE NOT cand.clean OR twin.first_line IS NOT NULL OR settled_before.id IS NOT NULL
),
decided AS (
    INSERT INTO recon_outcome (line_id, match_state, break_class, object_kind, object_id, expected_amount,
                               expected_currency, actual_amount, actual_currency, description, is_new,
                               from_candidates, by_reference, record_type, dup_key, fingerprint)
    SELECT id,
           {rules.MATCH_STATE_OF_BREAK},
           break_class,
           CASE WHEN order_id IS NULL THEN '' ELSE 'payment_order' END,
           COALESCE(order_id, ''),
           expected, COALESCE(expected_currency, ''), actual, currency,
           {rules.CHARGE_LINE_DESCRIPTION},
           is_new,
           true,
           by_reference AND break_class IS NOT DISTINCT FROM '{BreakClass.TIMING}',
           record_type, dup_key,
           CASE WHEN record_type IN ({sql_list(rules.UNCHANGED_SKIPPABLE)}) AND NOT by_merchant THEN {_FINGERPRINT} END
    FROM classified
    WHERE NOT by_reference OR break_class IS NOT NULL
)
SELECT 1
"""


def charge_lines_decide(cursor: CursorWrapper, scope: RunScope) -> None:
    """An outcome for every candidate that needs one (see above)."""
    cursor.execute(_DECIDE, scope.params)
