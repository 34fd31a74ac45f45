"""Per-statement figures of one measured call (``reconcile.py --explain FILE``): every SQL statement it sends,
timed, and with ``explain`` first run under ``EXPLAIN (ANALYZE, BUFFERS)`` inside a savepoint rolled back (so
the real statement then runs as it would have, its results and row counts untouched; the plans go to a file).

Timings with ``explain`` on are of the real statement after its explained twin warmed the cache: compare the
plans' own "Execution Time", which ran first, cold as in an unexplained run.
"""
from __future__ import annotations

import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path

_EXPLAINABLE = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE TEMP TABLE \w+ ON COMMIT DROP AS)\b",
                          re.IGNORECASE)
_EXECUTION = re.compile(r"Execution Time: ([0-9.]+) ms")


def _label(sql: str) -> str:
    """The reconciliation function that sent it (``module.function``), and the statement's start."""
    frame, where = sys._getframe(2), ""
    while frame is not None:
        path = frame.f_code.co_filename
        if "/reconciliation/" in path and "/django/" not in path:
            where = f"{Path(path).stem}.{frame.f_code.co_name}"
            break
        frame = frame.f_back
    return f"{where:36} {' '.join(sql.split())[:70]}"


@contextmanager
def statements_measured(connection, plans: Path | None):
    """Yields the list it fills: ``(label, seconds, explained ms or None)`` per statement, in order."""
    rows: list[list] = []
    out = open(plans, "w") if plans else None

    def wrapper(execute, sql, params, many, context):
        explained = None
        if out is not None and not many and _EXPLAINABLE.match(sql):
            with context["connection"].connection.cursor() as cursor:  # psycopg's own: no wrapper, client-side
                cursor.execute("SAVEPOINT bench_explain")
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                cursor.execute("ROLLBACK TO SAVEPOINT bench_explain")
                cursor.execute("RELEASE SAVEPOINT bench_explain")
            match = _EXECUTION.search(plan)
            explained = float(match.group(1)) if match else None
            out.write(f"--- statement {len(rows) + 1}: {explained} ms\n{sql.strip()}\n\n{plan}\n\n")
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            rows.append([_label(sql), time.perf_counter() - started, explained])

    try:
        with connection.execute_wrapper(wrapper):
            yield rows
    finally:
        if out is not None:
            out.close()


def statements_print(rows: list[list], *, top: int = 25) -> None:
    """The statements that took longest, in run order, and what the rest took together."""
    total = sum(seconds for _, seconds, _ in rows)
    keep = sorted(range(len(rows)), key=lambda n: rows[n][1], reverse=True)[:top]
    print(f"statements of the measured run: {len(rows)}, {total:.2f} s in all; the {len(keep)} longest:")
    print(f"  {'#':>4} {'s':>8} {'explained ms':>12}  statement")
    for n in sorted(keep):
        label, seconds, explained = rows[n]
        print(f"  {n + 1:4} {seconds:8.3f} {'' if explained is None else f'{explained:12.1f}':>12}  {label}")
    rest = total - sum(rows[n][1] for n in keep)
    print(f"  the other {len(rows) - len(keep)} statements: {rest:.3f} s")
