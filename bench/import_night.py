"""The measured night's import alone, on a copy of a ten-night snapshot, with the CPU of every process it uses.

    .venv/bin/python bench/import_night.py --db COPY --workdir var/bench/<snapshot> --nights 10 [--tree OTHER_CHECKOUT]

Imports the last night's report and bank statement (``settlement_file_import``) as ``reconcile.py --phase
measure`` does (a ``CHECKPOINT`` first, pyarrow loaded before the clock), with the code of ``--tree`` (default: this
checkout; a detached worktree of main for A B B A). Prints one JSON line: the wall seconds, this process's CPU
(``time.process_time``: the parse and the client's side of each statement), the CPU of the import's own backend
and of the other backends of the database (a second connection's, sampled every 20 ms from ``pg_stat_activity``
and ``/proc/<pid>/stat``: a backend that exits loses at most its last 20 ms), VmHWM, the load, and an md5 of the
report's lines (every column but the id, in ordinal order) and of its file row's sums, to compare trees.
``--migrate`` runs ``manage.py migrate`` on the copy first (a tree with a migration the snapshot lacks).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reconcile_files import night_files  # noqa: E402
from _statements import backend_cpu  # noqa: E402

_FILE_SUMS = ("sha256, name, format, size, line_count, malformed_count, counts_by_type, statements, settled_at, fees,"
              " unique_references, twin_references")


class _Backends:
    """Every backend of ``db`` but the sampler's own, their CPU at the start and the last seen."""

    def __init__(self, db: str) -> None:
        self._conn = psycopg.connect(host="127.0.0.1", user="postgres", dbname=db, autocommit=True)
        self._first: dict[int, float] = {pid: backend_cpu(pid) for pid in self._pids()}
        self._last = dict(self._first)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _pids(self) -> list[int]:
        return [pid for (pid,) in self._conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            for pid in self._pids():
                if (cpu := backend_cpu(pid)) > 0:
                    self._first.setdefault(pid, 0.0)
                    self._last[pid] = cpu

    def __enter__(self) -> _Backends:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        for pid in list(self._last):
            if (cpu := backend_cpu(pid)) > 0:
                self._last[pid] = cpu
        self._conn.close()

    def cpu(self, pid: int) -> float:
        return self._last.get(pid, 0.0) - self._first.get(pid, 0.0)

    def others(self, pid: int) -> float:
        return sum(self._last[p] - self._first[p] for p in self._last if p != pid)


def _vmhwm_mb() -> float:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:")) / 1024


def _md5s(cursor, file_id: int) -> dict:
    cursor.execute("SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = "
                   "'reconciliation_settlementline'::regclass AND attnum > 0 AND NOT attisdropped AND attname <> 'id'")
    (columns,) = cursor.fetchone()
    cursor.execute(f"SELECT count(*), md5(string_agg(t::text, E'\\n' ORDER BY t.ordinal)) FROM (SELECT {columns} "
                   "FROM reconciliation_settlementline WHERE file_id = %s) t", [file_id])
    lines, lines_md5 = cursor.fetchone()
    cursor.execute(f"SELECT md5(t::text) FROM (SELECT {_FILE_SUMS} FROM reconciliation_settlementfile "
                   "WHERE id = %s) t", [file_id])
    return {"lines": lines, "lines_md5": lines_md5, "file_md5": cursor.fetchone()[0]}


def _slices_recorded(cpu) -> list:
    """The staged slices' ends, start, wall and import backend CPU appended to the list returned (after its first
    item, the clock's start, which the caller puts there), when the tree stages on a second connection."""
    recorded: list = []
    try:
        from reconciliation.services import staging
    except ImportError:
        return recorded
    original = staging.StagedLines.slices

    def slices(self):
        for after, up_to in original(self):
            at, before = time.perf_counter(), cpu()
            yield after, up_to
            recorded.append([up_to, round(at - recorded[0], 2), round(time.perf_counter() - at, 2),
                             round(cpu() - before, 2)])

    staging.StagedLines.slices = slices
    return recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="a fresh copy of a snapshot (changed by the import)")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--nights", type=int, default=10)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--migrate", action="store_true")
    args = parser.parse_args()
    os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings.local", "DJANGO_DEBUG": "false",
                       "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.db}", "LOG_LEVEL": "WARNING"})
    if args.migrate:
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=args.tree, check=True)
    sys.path.insert(0, str(args.tree.resolve()))
    import django

    django.setup()
    from django.db import connection

    from reconciliation.importers import adyen_arrow, stripe_arrow  # noqa: F401 (loaded before the clock)
    from reconciliation.services import settlement_file_import

    report_path, statement_path = night_files(args.workdir, args.nights - 1)
    slices = _slices_recorded(lambda: backend_cpu(connection.connection.info.backend_pid))
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    pid = connection.connection.info.backend_pid
    load = os.getloadavg()[0]
    with _Backends(args.db) as backends:
        started, client = time.perf_counter(), time.process_time()
        slices.append(started)
        report = settlement_file_import(path=report_path, actor="bench")
        settlement_file_import(path=statement_path, actor="bench")
        wall, client = time.perf_counter() - started, time.process_time() - client
    with connection.cursor() as cursor:
        md5s = _md5s(cursor, report.file.pk)
    print(json.dumps({"tree": str(args.tree), "load": load, "wall": round(wall, 2), "client_cpu": round(client, 2),
                      "import_backend_cpu": round(backends.cpu(pid), 2),
                      "other_backends_cpu": round(backends.others(pid), 2), "vmhwm_mb": round(_vmhwm_mb()),
                      **md5s, "slices (up to, started at, wall, import backend cpu)": slices[1:]}))


if __name__ == "__main__":
    main()
