"""``reconcile.py``'s setup: the nights' orders written set-based with their keys and indexes built after, the
nights' files written beside it, and the history nights (every night but the measured one) imported and reconciled.

The orders are what the settlement matching reads: ``--lines`` succeeded orders a night, each with its own payment
event. Written row by row under their keys and indexes (and two deferred foreign keys each, whose checks at commit
lock every referenced event row), 10M orders did not finish in 27 minutes on a loaded machine. Here, in one
transaction: every key, unique constraint and foreign key touching the two tables and their other indexes are set
aside (definitions read from the catalog), the rows inserted by one ``INSERT ... SELECT`` per table, then the same
definitions put back: ``ADD CONSTRAINT`` checks every row at once (a foreign key by one anti-join), so a missing
event or seller fails the setup, nothing is left half-checked, and a failure rolls the whole of it back. Check
constraints stay in force throughout. Then ``VACUUM (ANALYZE)`` of the database, as autovacuum would long have done
for orders that old (this server runs with autovacuum off): hint bits, visibility map, statistics. The ledger and
wallet are not written: matching reads neither.

What the measured night sees differs in one way: indexes built by ``CREATE INDEX`` are packed (leaves 90% full)
where a real history's, grown an order at a time, are fuller on the right and ~70% full where keys arrive at random
(the scattered references' index): a few percent fewer index pages to read.
"""
from __future__ import annotations

import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _reconcile_files import BREAK_KINDS, DAY, PSP_REFERENCE_SQL, night_files, write_adyen_night, write_night

#: Constraints of these kinds (primary key, unique, foreign key) are set aside while the orders are inserted.
_KEYS_SQL = """
SELECT conrelid::regclass::text, quote_ident(conname), contype, pg_get_constraintdef(oid)
  FROM pg_constraint
 WHERE contype IN ('p', 'u', 'f') AND (conrelid = ANY(%(tables)s::regclass[])
       OR (contype = 'f' AND confrelid = ANY(%(tables)s::regclass[])))
 ORDER BY contype = 'f' DESC, conrelid::regclass::text, conname"""
#: The tables' other indexes (not a constraint's).
_INDEXES_SQL = """
SELECT quote_ident(c.relname), pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = ANY(%(tables)s::regclass[])
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
 ORDER BY 1"""


def _clone_sql(model, template_pk: str, overrides: dict[str, str], first: int, last: int) -> str:
    """INSERT ... SELECT that copies a template row for ``i`` in ``first..last`` with SQL ``overrides``."""
    columns = [f.column for f in model._meta.concrete_fields]
    select = [overrides.get(c, f"t.{c}") for c in columns]
    table = model._meta.db_table
    return (f"WITH t AS MATERIALIZED (SELECT * FROM {table} WHERE id = '{template_pk}') "
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(select)} "
            f"FROM t CROSS JOIN generate_series({first}, {last}) AS i")


def _completed_sql(lines: int, every: int) -> str:
    """Order ``i``'s completion: night n (0-based) holds orders lines*n+1 .. lines*(n+1), completed on DAY + n."""
    completed = (f"timestamptz '{DAY.isoformat()} 00:00:00+00' + ((i - 1) / {lines}) * interval '1 day'"
                 " + (i % 86000) * interval '1 second'")
    if every:  # the timing kind: completed three days before its batch closes (the window is a day)
        timing = BREAK_KINDS.index("timing")
        completed = (f"CASE WHEN i % {every} = 0 AND (i / {every}) % {len(BREAK_KINDS)} = {timing}"
                     f" THEN ({completed}) - interval '3 days' ELSE {completed} END")
    return completed


def _timed(times: dict[str, float], name: str, cursor, statements) -> None:
    started = time.perf_counter()
    for statement in statements:
        cursor.execute(statement)
    times[name] = times.get(name, 0.0) + time.perf_counter() - started


def orders_insert(lines: int, nights: int, every: int) -> dict[str, float]:
    """``lines * nights`` succeeded orders (one event each), as ``reconcile.py`` has always written them, with
    their keys and indexes set aside and put back (module docstring). Returns seconds per step."""
    from django.db import connection, transaction

    from core.models import ApiClient
    from payments.models import PaymentEvent, PaymentOrder, Seller

    times: dict[str, float] = {}
    tables = [PaymentEvent._meta.db_table, PaymentOrder._meta.db_table]
    count = lines * nights
    completed = _completed_sql(lines, every)
    with transaction.atomic(), connection.cursor() as cursor:
        client = ApiClient.objects.create(name="bench", key_prefix="bench", key_hash=uuid.uuid4().hex)
        seller = Seller.objects.create(client=client, name="bench seller")
        event = PaymentEvent.objects.create(client=client, buyer_reference="b", payment_method="pm_card_visa",
                                            idempotency_key="template")
        template = PaymentOrder.objects.create(payment_event=event, seller=seller, amount=1000, currency="usd",
                                               state="succeeded", psp_reference="pi_template",
                                               completed_at=datetime(2026, 1, 15, tzinfo=UTC))
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the template rows' deferred checks, before the keys go
        # This transaction's only (the server's settings stay): index builds and the foreign keys' checks in memory.
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(_KEYS_SQL, {"tables": tables})
        keys = cursor.fetchall()
        cursor.execute(_INDEXES_SQL, {"tables": tables})
        indexes = cursor.fetchall()
        _timed(times, "keys_dropped", cursor,
               [f"DROP INDEX {name}" for name, _ in indexes]
               + [f"ALTER TABLE {table} DROP CONSTRAINT {name}" for table, name, _, _ in keys])
        _timed(times, "events_inserted", cursor, [_clone_sql(
            PaymentEvent, event.pk, {"id": "'pe_b' || i", "idempotency_key": "'b' || i"}, 1, count)])
        _timed(times, "orders_inserted", cursor, [_clone_sql(PaymentOrder, template.pk, {
            "id": "'ord_b' || i", "payment_event_id": "'pe_b' || i", "amount": "100 + (i % 100000)",
            "psp_reference": PSP_REFERENCE_SQL, "completed_at": completed,
            "created_at": completed, "updated_at": completed}, 1, count)])
        # Keys first (the foreign keys need the referenced ones), in the order read: p/u, then f.
        _timed(times, "keys_built", cursor,
               [f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"
                for table, name, kind, definition in sorted(keys, key=lambda k: k[2] == "f")])
        _timed(times, "indexes_built", cursor, [definition for _, definition in indexes])
        # The templates, by their keys now there are keys again (the event's referrers checked at commit).
        cursor.execute(f"DELETE FROM {tables[1]} WHERE id = %s", [template.pk])
        cursor.execute(f"DELETE FROM {tables[0]} WHERE id = %s", [event.pk])
    with connection.cursor() as cursor:
        _timed(times, "vacuum_analyze", cursor, ["VACUUM (ANALYZE)"])
    return times


def files_write(workdir: Path, lines: int, nights: int, every: int, report_format: str) -> float:
    """Every night's report and bank statement; returns the seconds taken."""
    from psp_sandbox.settlement import COLUMNS, camt053, major

    started = time.perf_counter()
    writer = write_adyen_night if report_format == "adyen" else write_night
    for night in range(nights):
        writer(workdir, night, lines, every, COLUMNS, camt053, major)
    return time.perf_counter() - started


def setup(workdir: Path, lines: int, nights: int, every: int, report_format: str) -> dict:
    """The orders and the files: the files are written by a thread while PostgreSQL inserts (the insert waits on
    the server, the writing is Python's; two cores). Returns seconds per step."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as pool:
        files = pool.submit(files_write, workdir, lines, nights, every, report_format)
        times = orders_insert(lines, nights, every)
        file_seconds = files.result()  # the writer's exception, if any, raised here
    report = night_files(workdir, nights - 1)[0]
    return {"orders": times, "orders_seconds": sum(times.values()), "file_seconds": file_seconds,
            "setup_seconds": time.perf_counter() - started, "report": str(report),
            "size_mb": report.stat().st_size / 1e6}


def history(workdir: Path, nights: int, vacuum: bool = True) -> list[dict[str, float]]:
    """Every night but the last imported and reconciled, as the nightly job does (the measured night's history
    is their output), each followed by ``VACUUM (ANALYZE)`` of the database unless ``vacuum`` is false: what
    autovacuum does between two nights on a production server (a night's lines are over its insert threshold
    until the table holds five nights; this server runs without it). Returns seconds per night and step."""
    from django.db import connection

    from reconciliation.services import reconciliation_run, settlement_file_import

    per_night = []
    for night in range(nights - 1):
        started = time.perf_counter()
        for path in night_files(workdir, night):
            settlement_file_import(path=path, actor="bench")
        imported = time.perf_counter()
        reconciliation_run(day=DAY + timedelta(days=night), actor="bench")
        reconciled = time.perf_counter()
        if vacuum:
            with connection.cursor() as cursor:
                cursor.execute("VACUUM (ANALYZE)")
        per_night.append({"import": imported - started, "reconcile": reconciled - imported,
                          "vacuum": time.perf_counter() - reconciled})
        print(f"[{time.strftime('%H:%M:%S')}] history night {night + 1}: {per_night[-1]}", file=sys.stderr, flush=True)
    return per_night
