"""A prototype of the import on two connections, measured (``docs/reconciliation-speed.md``, eleventh session).

    .venv/bin/python bench/import_two_connections.py --db COPY_OF_A_SNAPSHOT --workdir var/bench/<db> --slices 3

The night's report is parsed as the import parses it (``iter_copy_chunks`` in a read-ahead thread); a second
connection (autocommit) ``COPY``s the chunks into an ``UNLOGGED`` staging table (created here, as the superuser:
the app would need a migration), committing a slice of lines at a time; the import's connection, in one transaction,
``INSERT``s each slice sorted by PSP reference as soon as it has landed. Then the transaction is rolled back (the
file row too), the staged rows deleted and the lines' table vacuumed, so that runs can be alternated on one copy.
Prints the wall seconds, the client's CPU, each backend's CPU and when each slice's ``INSERT`` started. ``--slices
1`` is today's shape with the staging moved to the other connection (the ``INSERT`` after the whole parse).
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from _statements import backend_cpu  # noqa: E402

_COLUMNS = ("file_id, ordinal, line_number, record_type, raw_type, psp_reference, source_reference, "
            "merchant_reference, payout_reference, currency, gross, fee, net, occurred_at, source_line, error")
_FILE_ID = 999_999  # a file row made for the run (rolled back)


def _stage(connection: psycopg.Connection, report: Path, per_slice: int, landed: queue.Queue) -> None:
    """The report's chunks ``COPY``d into the staging table, a commit every ``per_slice`` lines; each slice's
    ordinals ``(after, up to)`` put in ``landed`` once committed, then ``None`` (or the exception)."""
    from reconciliation.importers import CopyChunk, iter_copy_chunks
    from reconciliation.services.importing import _read_ahead

    try:
        rows = after = 0
        copying = None
        for item in _read_ahead(iter_copy_chunks(report, "stripe", _FILE_ID)):
            if not isinstance(item, CopyChunk):
                continue
            if copying is None:
                copying = connection.cursor().copy(f"COPY recon_stage ({_COLUMNS}) FROM STDIN")
                copy = copying.__enter__()
            copy.write(item.text)
            rows += item.rows
            if rows - after >= per_slice:
                copying.__exit__(None, None, None)
                copying = None
                landed.put((after, rows))
                after = rows
        if copying is not None:
            copying.__exit__(None, None, None)
            landed.put((after, rows))
        landed.put(None)
    except Exception as exc:  # noqa: BLE001 - re-raised by the importing thread
        landed.put(exc)


def _run(db: str, report: Path, slices: int) -> dict:
    importing = psycopg.connect(host="127.0.0.1", user="postgres", dbname=db)
    staging = psycopg.connect(host="127.0.0.1", user="postgres", dbname=db, autocommit=True)
    staging.execute(f"CREATE UNLOGGED TABLE IF NOT EXISTS recon_stage AS SELECT {_COLUMNS} "
                    "FROM reconciliation_settlementline WITH NO DATA")
    staging.execute("CREATE INDEX IF NOT EXISTS recon_stage_file_ordinal ON recon_stage (file_id, ordinal)")
    importing.execute("CHECKPOINT")
    importing.commit()
    first, second = importing.info.backend_pid, staging.info.backend_pid
    importing.execute("INSERT INTO reconciliation_settlementfile SELECT (jsonb_populate_record(f, jsonb_build_object("
                      "'id', %s, 'sha256', 'bench'))).* FROM reconciliation_settlementfile f ORDER BY id DESC LIMIT 1",
                      [_FILE_ID])
    landed: queue.Queue = queue.Queue()
    with open(report, "rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 22), b"")) - 1
    started, client = time.perf_counter(), time.process_time()
    cpu_first, cpu_second = backend_cpu(first), backend_cpu(second)
    thread = threading.Thread(target=_stage, args=(staging, report, -(-lines // slices), landed))
    thread.start()
    inserts = []
    while (got := landed.get()) is not None:
        if isinstance(got, Exception):
            raise got
        after, up_to = got
        at, cpu = time.perf_counter(), backend_cpu(first)
        importing.execute(f"INSERT INTO reconciliation_settlementline ({_COLUMNS}) SELECT {_COLUMNS} FROM recon_stage "
                          "WHERE file_id = %s AND ordinal > %s AND ordinal <= %s ORDER BY psp_reference",
                          [_FILE_ID, after, up_to])
        inserts.append([up_to, round(at - started, 2), round(time.perf_counter() - at, 2),
                        round(backend_cpu(first) - cpu, 2)])
    thread.join()
    result = {"slices": slices, "load": os.getloadavg()[0], "wall": round(time.perf_counter() - started, 2),
              "client_cpu": round(time.process_time() - client, 2),
              "importing_cpu": round(backend_cpu(first) - cpu_first, 2),
              "staging_cpu": round(backend_cpu(second) - cpu_second, 2),
              "inserts (up to ordinal, started at, wall, cpu)": inserts}
    importing.rollback()
    at, cpu = time.perf_counter(), backend_cpu(second)
    staging.execute("DELETE FROM recon_stage WHERE file_id = %s", [_FILE_ID])
    deleted = [round(time.perf_counter() - at, 2), round(backend_cpu(second) - cpu, 2)]
    result["staged rows deleted (wall, cpu)"] = deleted
    importing.autocommit = True
    importing.execute("VACUUM reconciliation_settlementline")
    staging.execute("VACUUM recon_stage")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="a copy of a ten-night snapshot (changed: a staging table)")
    parser.add_argument("--workdir", type=Path, required=True, help="the snapshot's files (report_<night>.csv)")
    parser.add_argument("--night", type=int, default=9)
    parser.add_argument("--slices", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from reconciliation.importers import stripe_arrow  # noqa: F401 (pyarrow loaded before the clock)

    print(json.dumps(_run(args.db, args.workdir / f"report_{args.night}.csv", args.slices)))


if __name__ == "__main__":
    main()
