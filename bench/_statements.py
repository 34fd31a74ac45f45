"""Per-statement figures of one measured call (``reconcile.py --statements``, ``--explain FILE``): every SQL statement
it sends, timed in wall seconds and in the PostgreSQL backend's CPU seconds (``/proc/<pid>/stat``: the database on
this machine), and with ``explain`` first run under ``EXPLAIN (ANALYZE, BUFFERS)`` inside a savepoint rolled back (so
the real statement then runs as it would have, its results and row counts untouched; the plans go to a file).

Timings with ``explain`` on are of the real statement after its explained twin warmed the cache: compare the
plans' own "Execution Time", which ran first, cold as in an unexplained run.
"""
from __future__ import annotations

import os
import re
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

_EXPLAINABLE = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE TEMP TABLE \w+ ON COMMIT DROP AS)\b",
                          re.IGNORECASE)
_EXECUTION = re.compile(r"Execution Time: ([0-9.]+) ms")
_TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process ``pid`` has used; 0 when it is not on this machine."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


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
    """Yields the list it fills: ``(label, seconds, explained ms or None, backend CPU seconds)`` per statement, in
    order. Statements of the run's second connections (``matching.aside``) too, labelled ``[aside]``."""
    from django.db.backends.signals import connection_created

    rows: list[list] = []
    out = open(plans, "w") if plans else None
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid

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
        started, cpu = time.perf_counter(), backend_cpu(pid)
        try:
            return execute(sql, params, many, context)
        finally:
            rows.append([_label(sql), time.perf_counter() - started, explained, backend_cpu(pid) - cpu])

    def aside(execute, sql, params, many, context):  # a second connection of the run (``matching.aside``)
        backend = context["connection"].connection.info.backend_pid
        started, cpu = time.perf_counter(), backend_cpu(backend)
        try:
            return execute(sql, params, many, context)
        finally:
            rows.append([f"[aside] {_label(sql)}", time.perf_counter() - started, None, backend_cpu(backend) - cpu])

    def created(sender, connection, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            connection.execute_wrappers.append(aside)

    connection_created.connect(created)
    try:
        with connection.execute_wrapper(wrapper):
            yield rows
    finally:
        connection_created.disconnect(created)
        if out is not None:
            out.close()


def statements_print(rows: list[list], *, top: int = 25) -> None:
    """The statements that took longest, in run order, and what the rest took together (wall and backend CPU)."""
    total, total_cpu = sum(row[1] for row in rows), sum(row[3] for row in rows)
    keep = sorted(range(len(rows)), key=lambda n: rows[n][1], reverse=True)[:top]
    aside = [row for row in rows if row[0].startswith("[aside]")]
    print(f"statements of the measured run: {len(rows)}, {total:.2f} s in all, backend CPU {total_cpu:.2f} s (of "
          f"them on a second connection: {len(aside)}, {sum(row[1] for row in aside):.2f} s, backend CPU "
          f"{sum(row[3] for row in aside):.2f} s); the {len(keep)} longest:")
    print(f"  {'#':>4} {'s':>8} {'CPU s':>6} {'explained ms':>12}  statement")
    for n in sorted(keep):
        label, seconds, explained, cpu = rows[n]
        print(f"  {n + 1:4} {seconds:8.3f} {cpu:6.2f} {'' if explained is None else f'{explained:12.1f}':>12}  {label}")
    rest, rest_cpu = total - sum(rows[n][1] for n in keep), total_cpu - sum(rows[n][3] for n in keep)
    print(f"  the other {len(rows) - len(keep)} statements: {rest:.3f} s, backend CPU {rest_cpu:.2f} s")
