"""The measured night's sorted insert into ``settlement_line``, alone, with one reference-index variant at a time.

    .venv/bin/python bench/import_insert_variants.py dump --db IMPORTED_COPY --file-id N --out night.bin
    .venv/bin/python bench/import_insert_variants.py run --db FRESH_COPY --lines night.bin VARIANT [VARIANT ...]

``dump`` writes a file's lines (every column but the id, binary ``COPY``) from a copy where the night was imported
(``bench/import_night.py``). ``run`` loads them once into ``bench_stage`` (unlogged, on the copy: a copy of a
snapshot, never the snapshot) and, for each variant in turn: builds its reference index afresh (dropping the one
before; ``existing`` keeps the snapshot's), ``CHECKPOINT``, then in a transaction rolled back either ``INSERT ...
SELECT ... ORDER BY`` the variant's order (``EXPLAIN (ANALYZE, BUFFERS, WAL, TIMING OFF)``: its buffers and WAL), or,
for the ``copy:`` modes, a second connection's ``COPY (SELECT ... ORDER BY psp_reference) TO STDOUT`` relayed by
this process into ``COPY ... FROM STDIN`` (multi-insert); then ``VACUUM``. One JSON line per run: the backends'
CPU seconds (``/proc/<pid>/stat``), this process's, the index's size before and after, the load. The copy is left
with a fresh ``btree (psp_reference)`` (main's index, rebuilt) unless the last variant is ``existing``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _statements import backend_cpu  # noqa: E402

COLUMNS = ("file_id, ordinal, line_number, record_type, raw_type, psp_reference, source_reference, merchant_reference,"
           " payout_reference, currency, gross, fee, net, occurred_at, source_line, error")
LINES = "reconciliation_settlementline"
INDEX = "settlement_line_psp_ref"
_CREATE = f"CREATE INDEX {INDEX} ON {LINES} "
_HASH64 = "hashtextextended(psp_reference, 0)"
#: variant: (the index's DDL, or None to keep the snapshot's; the insert's ORDER BY; ``{mask}``: the hash index's
#: high mask, so that the lines come in bucket order).
VARIANTS: dict[str, tuple[str | None, str]] = {
    "existing": (None, "psp_reference"),
    "none": ("", "psp_reference"),
    "btree": (_CREATE + "(psp_reference)", "psp_reference"),
    "btree_nodedup": (_CREATE + "(psp_reference) WITH (deduplicate_items = off)", "psp_reference"),
    "btree_ff70": (_CREATE + "(psp_reference) WITH (fillfactor = 70)", "psp_reference"),
    # the last night's lines only: an index that fits shared_buffers (what a ten-night index would cost a server
    # sized for it), not a variant matching could use
    "btree_last_night": (_CREATE + "(psp_reference) WHERE file_id >= 17", "psp_reference"),
    "btree_last_night_ff45": (_CREATE + "(psp_reference) WITH (fillfactor = 45) WHERE file_id >= 17", "psp_reference"),
    "int8": (_CREATE + f"({_HASH64})", _HASH64),
    "int8_ff70": (_CREATE + f"({_HASH64}) WITH (fillfactor = 70)", _HASH64),
    "hash": (_CREATE + "USING hash (psp_reference)", "psp_reference"),
    "hash_bucket": (_CREATE + "USING hash (psp_reference)", "hashtext(psp_reference) & {mask}"),
    "hash_ff90": (_CREATE + "USING hash (psp_reference) WITH (fillfactor = 90)", "hashtext(psp_reference) & {mask}"),
}
MODES = ("insert", "insert_work_mem", "copy:binary", "copy:text")


def _connect(db: str) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", user="postgres", dbname=db, autocommit=True)


def dump(args: argparse.Namespace) -> None:
    with _connect(args.db) as conn, conn.cursor() as cursor, open(args.out, "wb") as out:
        with cursor.copy(f"COPY (SELECT {COLUMNS} FROM {LINES} WHERE file_id = {int(args.file_id)}) "
                         "TO STDOUT (FORMAT binary)") as copy:
            for block in copy:
                out.write(block)


def _stage(cursor: psycopg.Cursor, lines: str) -> None:
    cursor.execute("SELECT to_regclass('bench_stage')")
    if cursor.fetchone()[0] is not None:
        return
    cursor.execute(f"CREATE UNLOGGED TABLE bench_stage AS SELECT {COLUMNS} FROM {LINES} WITH NO DATA")
    with cursor.copy(f"COPY bench_stage ({COLUMNS}) FROM STDIN (FORMAT binary)") as copy, open(lines, "rb") as source:
        while data := source.read(1 << 20):
            copy.write(data)
    cursor.execute("VACUUM ANALYZE bench_stage")


def _index_size(cursor: psycopg.Cursor) -> float:
    cursor.execute(f"SELECT coalesce(pg_relation_size(to_regclass('{INDEX}')), 0)")
    return round(cursor.fetchone()[0] / 2**20, 1)


def _build(cursor: psycopg.Cursor, pid: int, variant: str) -> tuple[str, float]:
    """The variant's index built; returns its insert's ORDER BY and the build's backend CPU."""
    ddl, order = VARIANTS[variant]
    before = backend_cpu(pid)
    if ddl is not None:
        cursor.execute(f"DROP INDEX IF EXISTS {INDEX}")
        if ddl:
            cursor.execute(ddl)
    if "{mask}" in order:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        cursor.execute(f"SELECT highmask FROM hash_metapage_info(get_raw_page('{INDEX}', 0))")
        order = order.format(mask=cursor.fetchone()[0])
    return order, round(backend_cpu(pid) - before, 2)


def _insert(cursor: psycopg.Cursor, order: str, mode: str) -> dict:
    if mode == "insert_work_mem":  # the sort in memory rather than on tape
        cursor.execute("SET LOCAL work_mem = '400MB'")
    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, WAL, TIMING OFF, FORMAT JSON) INSERT INTO {LINES} ({COLUMNS}) "
                   f"SELECT {COLUMNS} FROM bench_stage ORDER BY {order}")
    top = cursor.fetchone()[0][0]["Plan"]
    return {key: top.get(name) for key, name in (
        ("shared_hit", "Shared Hit Blocks"), ("shared_read", "Shared Read Blocks"),
        ("shared_written", "Shared Written Blocks"), ("wal_records", "WAL Records"), ("wal_fpi", "WAL FPI"))}


def _relay(cursor: psycopg.Cursor, other: psycopg.Cursor, order: str, mode: str) -> dict:
    """The night streamed sorted by the other connection into this one's ``COPY`` (this process relays it)."""
    fmt = mode.split(":")[1]
    rows = 0
    with other.copy(f"COPY (SELECT {COLUMNS} FROM bench_stage ORDER BY {order}) TO STDOUT (FORMAT {fmt})") as out, \
            cursor.copy(f"COPY {LINES} ({COLUMNS}) FROM STDIN (FORMAT {fmt})") as into:
        for block in out:
            into.write(block)
            rows += 1
    return {"blocks": rows}


def _once(cursors: tuple[psycopg.Cursor, psycopg.Cursor], pids: tuple[int, int], variant: str, mode: str) -> dict:
    cursor, other = cursors
    order, build_cpu = _build(cursor, pids[0], variant)
    size = _index_size(cursor)
    cursor.execute("CHECKPOINT")
    load = os.getloadavg()[0]
    cursor.execute("BEGIN")
    start, client, cpu, other_cpu = time.perf_counter(), time.process_time(), backend_cpu(pids[0]), backend_cpu(pids[1])
    figures = _insert(cursor, order, mode) if mode.startswith("insert") else _relay(cursor, other, order, mode)
    figures.update(
        variant=variant, mode=mode, load=round(load, 2), build_cpu=build_cpu,
        wall=round(time.perf_counter() - start, 2), backend_cpu=round(backend_cpu(pids[0]) - cpu, 2),
        other_backend_cpu=round(backend_cpu(pids[1]) - other_cpu, 2),
        client_cpu=round(time.process_time() - client, 2), index_mb=size, index_mb_after=_index_size(cursor))
    cursor.execute("ROLLBACK")
    cursor.execute(f"VACUUM {LINES}")
    return figures


def run(args: argparse.Namespace) -> None:
    with _connect(args.db) as conn, _connect(args.db) as other_conn:
        cursor, other = conn.cursor(), other_conn.cursor()
        _stage(cursor, args.lines)
        for item in args.variants:
            variant, _, mode = item.partition("/")
            print(json.dumps(_once((cursor, other), (conn.info.backend_pid, other_conn.info.backend_pid),
                                   variant, mode or "insert")), flush=True)
        if args.variants and not args.variants[-1].startswith("existing"):
            _build(cursor, conn.info.backend_pid, "btree")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    dumping = commands.add_parser("dump")
    dumping.add_argument("--db", required=True)
    dumping.add_argument("--file-id", required=True, type=int)
    dumping.add_argument("--out", required=True)
    running = commands.add_parser("run", epilog=f"VARIANT: one of {', '.join(VARIANTS)}, optionally /MODE, MODE one "
                                                f"of {', '.join(MODES)} (default insert)")
    running.add_argument("--db", required=True)
    running.add_argument("--lines", required=True)
    running.add_argument("variants", nargs="*")
    args = parser.parse_args()
    (dump if args.command == "dump" else run)(args)


if __name__ == "__main__":
    main()
