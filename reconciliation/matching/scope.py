"""What one run reconciles and by which windows, and the database session it runs in."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from reconciliation.models import ReconciliationRun, SettlementFile

from .tables import FILES

#: Who resolves the breaks a run resolves by itself.
SYSTEM_ACTOR = "system:reconcile"


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


@dataclass(frozen=True)
class RunScope:
    """The run's files and windows; ``params`` are the parameters of every statement of the run."""

    run_id: int
    now: datetime
    #: The files this run reconciles (none reconciled yet), fixed at its start: a file committed
    #: meanwhile waits for the next run. ``settled_at``: when each one's batch closed, in the same order.
    files: list[int]
    settled_at: list[datetime | None]
    #: The files reconciled before this run.
    reconciled_files: list[int]
    #: An order completed more than this before its batch closed is a ``timing`` break.
    timing_window: timedelta
    #: Succeeded orders completed in ``[missing_since, missing_before)`` and unsettled are ``missing_in_settlement``.
    missing_before: datetime
    missing_since: datetime
    #: Orders completed in ``[missing_since, missing_checked_before)`` were checked by an earlier run: those it
    #: found settled stay settled (a matched charge line is never decided again), the others have a break.
    missing_checked_before: datetime
    #: How long after a payout its bank credit may be booked, when matched by amount.
    payout_window: timedelta
    #: The settled files (reconciled before, or this run's) whose batch closed within
    #: ``(missing_checked_before, missing_before + timing_window)``: where the orders new to the missing window
    #: are looked for first, set-based (``missing``). A charge line that settled such an order cleanly (by
    #: reference, no match row) is in one of them; any order not found there is probed one by one. A batch that
    #: closed at the window's very start holds orders completed before it (daily batches closing at midnight: the
    #: whole previous day), so it is left out; an order completed at that very instant is probed.
    missing_nearby_files: list[int]
    #: The last run, when every ``missing_in_settlement`` break it saw unsettled is still in this run's window but
    #: for its lookback (its window ended no later than ``missing_checked_before`` and ``missing_before``): such a
    #: break's order can only be settled now by a line this run decides (``missing``). None: no such run.
    missing_seen_by: int | None = None
    #: Reads of what was committed before the run may go to a second connection (``aside``): off inside an outer
    #: transaction, whose uncommitted rows only the run's own connection sees.
    reads_aside: bool = False

    @property
    def candidates_since(self) -> datetime | None:
        """The earliest completion of an order a clean line of this run's files can settle: a timing window
        before the earliest of their batches closed (``candidates``; None: no batch closed, no order)."""
        closed = [settled_at for settled_at in self.settled_at if settled_at is not None]
        return min(closed) - self.timing_window if closed else None

    @property
    def params(self) -> dict:
        return {
            "run": self.run_id, "now": self.now, "actor": SYSTEM_ACTOR, "files": self.files,
            "settled_at": self.settled_at, "reconciled_files": self.reconciled_files,
            "settled_files": self.reconciled_files + self.files,
            "timing_window": self.timing_window, "missing_before": self.missing_before,
            "missing_since": self.missing_since, "missing_checked_before": self.missing_checked_before,
            "missing_nearby_files": self.missing_nearby_files, "candidates_since": self.candidates_since,
            "missing_seen_by": self.missing_seen_by, "missing_days_from": self.missing_days_from,
        }

    @property
    def missing_days_from(self) -> date:
        """The first day (UTC) whose orders are all completed since ``missing_since`` (its own day at midnight)."""
        return (self.missing_since.astimezone(UTC) + timedelta(days=1, microseconds=-1)).date()

    @property
    def missing_window(self) -> dict[str, str]:
        """What this run checks for ``missing_in_settlement`` (kept in its stats, read by the next runs)."""
        return {"since": self.missing_since.isoformat(), "before": self.missing_before.isoformat()}


def run_scope(*, run: ReconciliationRun, day: date, reads_aside: bool = False) -> RunScope:
    """The scope of ``run`` for the business day ``day``: its files now, and the windows from settings
    (``RECONCILIATION_TIMING_WINDOW_HOURS``, ``_MISSING_CUTOFF_HOURS``, ``_MISSING_LOOKBACK_DAYS``,
    ``_PAYOUT_WINDOW_DAYS``)."""
    end_of_day = datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)
    missing_since = end_of_day - timedelta(days=_setting("RECONCILIATION_MISSING_LOOKBACK_DAYS", 30))
    unreconciled = list(SettlementFile.objects.filter(reconciled_at__isnull=True).order_by("id")
                        .values_list("id", "settled_at"))
    reconciled = list(SettlementFile.objects.filter(reconciled_at__isnull=False).order_by("id")
                      .values_list("id", "settled_at"))
    timing_window = timedelta(hours=_setting("RECONCILIATION_TIMING_WINDOW_HOURS", 24))
    missing_before = end_of_day - timedelta(hours=_setting("RECONCILIATION_MISSING_CUTOFF_HOURS", 48))
    missing_checked_before = _missing_checked_before(missing_since)
    return RunScope(
        run_id=run.pk,
        now=timezone.now(),
        files=[file_id for file_id, _ in unreconciled],
        settled_at=[settled_at for _, settled_at in unreconciled],
        reconciled_files=[file_id for file_id, _ in reconciled],
        timing_window=timing_window,
        missing_before=missing_before,
        missing_since=missing_since,
        missing_checked_before=missing_checked_before,
        payout_window=timedelta(days=_setting("RECONCILIATION_PAYOUT_WINDOW_DAYS", 5)),
        missing_nearby_files=[file_id for file_id, settled_at in reconciled + unreconciled if settled_at is not None
                              and missing_checked_before < settled_at < missing_before + timing_window],
        missing_seen_by=_missing_seen_by(min(missing_checked_before, missing_before)),
        reads_aside=reads_aside,
    )


#: How long before a run's start an order it could not see may have completed: ``completed_at`` is the
#: application's clock when the order succeeded, and the transaction that wrote it commits later (and another
#: host's clock may be behind). Only matters when a run's cut-off is past its own start.
_UNSEEN_BEFORE_START = timedelta(hours=1)


def _missing_checked_before(since: datetime) -> datetime:
    """The end of what earlier runs checked for ``missing_in_settlement`` from ``since`` on: the latest ``before``
    of a finished run whose window began no later (and not past its own start less ``_UNSEEN_BEFORE_START``, so
    that an order not yet committed when it ran is not counted as checked); ``since`` when none did."""
    checked = since
    for started_at, window in (ReconciliationRun.objects.filter(finished_at__isnull=False,
                                                                stats__has_key="missing_window")
                               .values_list("started_at", "stats__missing_window")):
        if datetime.fromisoformat(window["since"]) <= since:
            seen_before = started_at - _UNSEEN_BEFORE_START
            checked = max(checked, min(datetime.fromisoformat(window["before"]), seen_before))
    return checked


def _missing_seen_by(until: datetime) -> int | None:
    """The last finished run, when the ``missing_in_settlement`` window it checked ended no later than ``until``."""
    last = (ReconciliationRun.objects.filter(finished_at__isnull=False).order_by("-id")
            .values_list("id", "stats__missing_window").first())
    if last is None or not last[1] or datetime.fromisoformat(last[1]["before"]) > until:
        return None
    return last[0]


def session_prepare() -> None:
    """One run at a time (a transaction-scoped advisory lock), and a session tuned for bulk statements.

    Hash joins over a million lines need memory; compiling them (JIT) costs more than it saves;
    a cheap tuple transfer lets the big join run on every core; a run's ANALYZEs only need row
    counts. Fresh statistics of the files, so that the history joins are planned right.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('reconciliation_run'))")
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL parallel_tuple_cost = 0.01")
        cursor.execute("SET LOCAL default_statistics_target = 10")
        cursor.execute(f"ANALYZE {FILES}")
