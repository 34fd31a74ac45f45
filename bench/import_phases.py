"""Where a settlement import's time goes: the parse, the COPY into ``settlement_line``, the statements after it.

    BENCH_SCATTER_REFERENCES=1 .venv/bin/python bench/import_phases.py --lines 1000000 --history 9 --repeat 2

One database (``marketplace_bench_<BENCH_DB_TAG>imp<hex>``, migrated, no orders: the import reads none) holds
``--history`` nights of lines imported before; then the next night's report is imported ``--repeat`` times,
each in a transaction rolled back (and the table vacuumed after), printing per run the wall seconds, this
process's CPU (the parse and the COPY's client side), the PostgreSQL backend's CPU (``/proc/<pid>/stat``) split
into the ``COPY`` and each statement after it, and the load. ``--format adyen`` for an Adyen report.
``--db NAME`` keeps the database (and reuses it when it exists, history and all).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _load() -> str:
    with open("/proc/loadavg") as handle:
        return handle.read().split(" ", 1)[0]


class _Rollback(Exception):
    pass


def _measure(report: Path, statement: Path, fmt: str) -> dict:
    from django.db import connection, transaction

    from reconciliation.services import settlement_file_import

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    after_copy: list[tuple[str, float]] = []

    def timed(execute, sql_text, params, many, context):
        before = _cpu(backend)
        try:
            return execute(sql_text, params, many, context)
        finally:
            after_copy.append((" ".join(sql_text.split())[:60], _cpu(backend) - before))

    load = _load()
    wall, cpu, backend_cpu = time.perf_counter(), time.process_time(), _cpu(backend)
    try:
        with connection.execute_wrapper(timed), transaction.atomic():
            settlement_file_import(path=report, actor="bench", fmt=fmt)
            settlement_file_import(path=statement, actor="bench")
            raise _Rollback
    except _Rollback:
        pass
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    backend_cpu = _cpu(backend) - backend_cpu
    with connection.cursor() as cursor:
        cursor.execute("VACUUM reconciliation_settlementline")
    statements = sum(seconds for _, seconds in after_copy)
    heavy = sorted(after_copy, key=lambda item: -item[1])[:4]
    return {"load": load, "wall": wall, "cpu": cpu, "backend": backend_cpu, "copy_backend": backend_cpu - statements,
            "statements": statements, "heavy": heavy}


def _history(workdir: Path, nights: int, fmt: str) -> None:
    """The nights before the measured one, imported by the service; then vacuumed and a checkpoint."""
    from _reconcile_files import night_files
    from django.db import connection

    from reconciliation.services import settlement_file_import

    for night in range(nights):
        started = time.perf_counter()
        report, statement = night_files(workdir, night)
        settlement_file_import(path=report, actor="bench", fmt=fmt)
        settlement_file_import(path=statement, actor="bench")
        print(f"history night {night}: {time.perf_counter() - started:.2f} s (load {_load()})", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE reconciliation_settlementline")
        cursor.execute("CHECKPOINT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--history", type=int, default=0, help="nights imported before the measured one")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--breaks-pct", type=float, default=1.0)
    parser.add_argument("--format", choices=("stripe", "adyen"), default="stripe")
    parser.add_argument("--db", help="a database to keep (reused, history included, when it exists)")
    parser.add_argument("--workdir", type=Path, help="reports written there once and reused")
    args = parser.parse_args()
    db_name = args.db or f"marketplace_bench_{os.environ.get('BENCH_DB_TAG', '')}imp{uuid.uuid4().hex[:8]}"
    os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings.local", "DJANGO_DEBUG": "false",
                       "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}", "LOG_LEVEL": "WARNING"})
    workdir = args.workdir or ROOT / "var" / "bench" / f"import_{args.format}_{args.lines}"
    workdir.mkdir(parents=True, exist_ok=True)
    from _reconcile_files import night_files, write_adyen_night, write_night

    from psp_sandbox.settlement import COLUMNS, camt053, major

    every = round(100 / args.breaks_pct) if args.breaks_pct > 0 else 0
    writer = write_adyen_night if args.format == "adyen" else write_night
    for night in range(args.history + 1):
        if not night_files(workdir, night)[0].exists():
            writer(workdir, night, args.lines, every, COLUMNS, camt053, major)
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from reconciliation.importers import adyen_arrow, stripe_arrow  # noqa: F401 (loaded before the clock)

    try:
        if not exists:
            call_command("migrate", verbosity=0)
            _history(workdir, args.history, args.format)
        report, statement = night_files(workdir, args.history)
        print(f"db {db_name}, {args.format}, {args.lines:,} lines, {args.history} nights before", flush=True)
        for _ in range(args.repeat):
            run = _measure(report, statement, args.format)
            print(f"load {run['load']}: wall {run['wall']:.2f} s, client CPU {run['cpu']:.2f} s, backend CPU "
                  f"{run['backend']:.2f} s (COPY {run['copy_backend']:.2f}, after it {run['statements']:.2f}: "
                  + ", ".join(f"{text!r} {seconds:.2f}" for text, seconds in run["heavy"]) + ")", flush=True)
    finally:
        connection.close()
        if not args.db:
            with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name)))


if __name__ == "__main__":
    main()
