"""Settlement import + reconciliation throughput and memory, against PostgreSQL's own COPY.

    .venv/bin/python bench/reconcile.py --lines 1000000 [--nights 2] [--breaks-pct 1] [--format adyen]

On a fresh database ``marketplace_bench_*`` (created, migrated, dropped; ``BENCH_KEEP_DB=1``
keeps it): inserts ``--lines`` succeeded payment orders with set-based SQL, writes a Stripe
itemized payout reconciliation report with one charge row per order plus the payout row,
and the bank's camt.053 credit of that payout (setup, timed apart). Then, in a fresh
process, measures ``settlement_file_import`` of both files and ``reconciliation_run``, with
that process's peak RSS (VmHWM, and a 20 ms sampling thread on VmRSS); and, in the same run,
``COPY ... FROM STDIN`` of the same report into a bare all-text table (the median of three,
each after a CHECKPOINT, as the measured phase starts after one). Goal: import + reconcile
within 4.5x of COPY (Adyen: 6x), under 300 MB peak RSS, and zero breaks (``--breaks-pct 0``).

``--breaks-pct P`` makes P% of each night's lines differences, one class after another (``BREAK_KINDS``):
amount and currency mismatches, charges our books don't have, duplicated rows, unknown record types,
malformed amounts, orders settled past the timing window, and orders left out of the report (missing in
settlement once the cut-off passes: the later nights' runs find the earlier nights'). The run then prints
the breaks found per class beside the lines made per kind. ``--format adyen`` writes Adyen settlement details
reports (with their ``MerchantPayout`` row, the bank's credit naming the batch) instead of Stripe's; both are
read by Arrow (``importers.stripe_arrow``, ``importers.adyen_arrow``). ``BENCH_SCATTER_REFERENCES=1`` gives
the orders PSP references in no useful order (``_reconcile_files.psp_reference``), as real ones are.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reconcile_files import (  # noqa: E402
    BREAK_KINDS,
    DAY,
    PSP_REFERENCE_SQL,
    break_kind,
    night_files,
    write_adyen_night,
    write_night,
)
from _statements import statements_measured, statements_print  # noqa: E402


def _every(breaks_pct: float) -> int:
    return round(100 / breaks_pct) if breaks_pct > 0 else 0


def _env(db_name: str) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "DJANGO_DEBUG": "false",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}", "LOG_LEVEL": "WARNING"}


def _child(phase: str, db_name: str, workdir: Path, args: argparse.Namespace) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", phase, "--db", db_name, "--workdir", str(workdir),
                          "--lines", str(args.lines), "--nights", str(args.nights), "--breaks-pct",
                          str(args.breaks_pct), "--format", args.format]
                         + (["--statements"] if args.statements else [])
                         + (["--explain", str(args.explain.resolve())] if args.explain else []),
                         cwd=ROOT, env=_env(db_name), capture_output=True, text=True)
    if out.returncode:
        sys.stderr.write(out.stderr)
        out.check_returncode()
    return json.loads(out.stdout.strip().splitlines()[-1])


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- setup (timed apart) -------------------------------------------------------------------


def _clone_sql(model, template_pk: str, overrides: dict[str, str], count: int) -> str:
    """INSERT ... SELECT that copies a template row ``count`` times with SQL ``overrides`` (``i`` = 1..count)."""
    columns = [f.column for f in model._meta.concrete_fields]
    select = [overrides.get(c, f"t.{c}") for c in columns]
    table = model._meta.db_table
    return (f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(select)} "
            f"FROM {table} t CROSS JOIN generate_series(1, {count}) AS i WHERE t.id = '{template_pk}'")


def phase_setup(workdir: Path, lines: int, nights: int, every: int, report_format: str) -> dict:
    _django()
    from django.db import connection

    from core.models import ApiClient
    from payments.models import PaymentEvent, PaymentOrder, Seller
    from psp_sandbox.settlement import COLUMNS, camt053, major

    started = time.perf_counter()
    client = ApiClient.objects.create(name="bench", key_prefix="bench", key_hash=uuid.uuid4().hex)
    seller = Seller.objects.create(client=client, name="bench seller")
    event = PaymentEvent.objects.create(client=client, buyer_reference="b", payment_method="pm_card_visa",
                                        idempotency_key="template")
    template = PaymentOrder.objects.create(payment_event=event, seller=seller, amount=1000, currency="usd",
                                           state="succeeded", psp_reference="pi_template",
                                           completed_at=datetime(2026, 1, 15, tzinfo=UTC))
    # Night n (0-based) settles orders lines*n+1 .. lines*(n+1), completed on DAY + n.
    completed = (f"timestamptz '{DAY.isoformat()} 00:00:00+00' + ((i - 1) / {lines}) * interval '1 day'"
                 " + (i % 86000) * interval '1 second'")
    if every:  # the timing kind: completed three days before its batch closes (the window is a day)
        timing = BREAK_KINDS.index("timing")
        completed = (f"CASE WHEN i % {every} = 0 AND (i / {every}) % {len(BREAK_KINDS)} = {timing}"
                     f" THEN ({completed}) - interval '3 days' ELSE {completed} END")
    count = lines * nights
    with connection.cursor() as cursor:
        cursor.execute(_clone_sql(PaymentEvent, event.pk, {"id": "'pe_b' || i", "idempotency_key": "'b' || i"},
                                  count))
        cursor.execute(_clone_sql(PaymentOrder, template.pk, {
            "id": "'ord_b' || i", "payment_event_id": "'pe_b' || i", "amount": "100 + (i % 100000)",
            "psp_reference": PSP_REFERENCE_SQL, "completed_at": completed,
            "created_at": completed, "updated_at": completed}, count))
        cursor.execute(f"DELETE FROM {PaymentOrder._meta.db_table} WHERE id = %s", [template.pk])
        cursor.execute(f"DELETE FROM {PaymentEvent._meta.db_table} WHERE id = %s", [event.pk])
        cursor.execute("ANALYZE")
    orders_seconds = time.perf_counter() - started

    started = time.perf_counter()
    writer = write_adyen_night if report_format == "adyen" else write_night
    for night in range(nights):
        writer(workdir, night, lines, every, COLUMNS, camt053, major)
    report = night_files(workdir, nights - 1)[0]
    return {"orders_seconds": orders_seconds, "file_seconds": time.perf_counter() - started,
            "report": str(report), "size_mb": report.stat().st_size / 1e6}


# --- measure ---------------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def phase_measure(workdir: Path, nights: int, statements: bool = False, explain: Path | None = None) -> dict:
    _django()
    from django.db import connection
    from django.db.models import Count

    from reconciliation.models import Break
    from reconciliation.selectors import settlement_lines_with_match
    from reconciliation.services import reconciliation_run, settlement_file_import

    history_seconds = 0.0
    for night in range(nights - 1):  # history: earlier nights imported and reconciled, not measured
        started = time.perf_counter()
        for path in night_files(workdir, night):
            settlement_file_import(path=path, actor="bench")
        reconciliation_run(day=DAY + timedelta(days=night), actor="bench")
        history_seconds += time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")  # as before the COPY baseline
    report_path, statement_path = night_files(workdir, nights - 1)
    peak = {"rss": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak["rss"] = max(peak["rss"], _status_kb("VmRSS"))

    baseline_kb = _status_kb("VmRSS")
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    report = settlement_file_import(path=report_path, actor="bench")
    settlement_file_import(path=statement_path, actor="bench")
    imported = time.perf_counter()
    with (statements_measured(connection, explain) if statements or explain else nullcontext([])) as rows:
        run = reconciliation_run(day=DAY + timedelta(days=nights - 1), actor="bench")
    finished = time.perf_counter()
    stop.set()
    sampler.join()
    return {
        "import_seconds": imported - started, "reconcile_seconds": finished - imported,
        "lines": report.lines, "malformed": report.malformed, "breaks": Break.objects.count(),
        "matched": settlement_lines_with_match().filter(file=report.file, match_state="matched").count(),
        "breaks_by_class": dict(Break.objects.values_list("break_class").annotate(n=Count("id"))),
        "stats": run.stats, "history_seconds": history_seconds,
        "baseline_rss_mb": baseline_kb / 1024, "sampled_peak_rss_mb": peak["rss"] / 1024,
        "vmhwm_mb": _status_kb("VmHWM") / 1024, "statements": rows,
    }


def copy_baseline(db_name: str, report: Path, runs: int = 3) -> list[float]:
    """Seconds of ``COPY ... FROM STDIN`` of the report into a fresh bare all-text table, ``runs`` times,
    each after a CHECKPOINT (as the measured phase is), so that no run pays for another's dirty pages."""
    with open(report) as handle:
        header = next(csv.reader(handle))
    times = []
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=db_name, autocommit=True) as conn:
        columns = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(f"c{n}")) for n in range(len(header)))
        for _ in range(runs):
            conn.execute(sql.SQL("CREATE TABLE copy_baseline ({})").format(columns))
            conn.execute("CHECKPOINT")
            started = time.perf_counter()
            statement = "COPY copy_baseline FROM STDIN (FORMAT csv, HEADER true)"
            with conn.cursor() as cursor, cursor.copy(statement) as copy:
                with open(report, "rb") as handle:
                    while block := handle.read(1 << 20):
                        copy.write(block)
            times.append(time.perf_counter() - started)
            conn.execute("DROP TABLE copy_baseline")
        conn.execute("CHECKPOINT")
    return times


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000, help="charge rows (= payment orders)")
    parser.add_argument("--nights", type=int, default=1,
                        help="nights of --lines each; all but the last are imported and reconciled first, unmeasured"
                             " (the measured night then has that history)")
    parser.add_argument("--breaks-pct", type=float, default=0.0,
                        help="percent of lines made into differences of every class (BREAK_KINDS), e.g. 1")
    parser.add_argument("--format", choices=("stripe", "adyen"), default="stripe", help="the PSP report written")
    parser.add_argument("--statements", action="store_true",
                        help="time every SQL statement of the measured reconciliation run, print the longest")
    parser.add_argument("--explain", type=Path, metavar="FILE",
                        help="also EXPLAIN (ANALYZE, BUFFERS) each of them first (in a savepoint rolled back), the "
                             "plans written to FILE (the run's time then includes the plans: read the statements')")
    parser.add_argument("--phase", choices=("setup", "measure"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


def _run(args: argparse.Namespace) -> tuple[float, dict, list[float], dict]:
    """A fresh database (``marketplace_bench_<BENCH_DB_TAG><hex>``): migrate, set up, COPY, measure; dropped
    after unless ``BENCH_KEEP_DB``. Returns migrate seconds, setup, COPY runs and the measured phase."""
    db_name = f"marketplace_bench_{os.environ.get('BENCH_DB_TAG', '')}{uuid.uuid4().hex[:8]}"
    workdir = ROOT / "var" / "bench" / db_name
    workdir.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
    try:
        started = time.perf_counter()
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=_env(db_name),
                       check=True, capture_output=True)
        migrate_seconds = time.perf_counter() - started
        setup = _child("setup", db_name, workdir, args)
        copy_runs = copy_baseline(db_name, Path(setup["report"]))
        return migrate_seconds, setup, copy_runs, _child("measure", db_name, workdir, args)
    finally:
        if not os.environ.get("BENCH_KEEP_DB"):
            with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name)))
            for path in workdir.iterdir():
                path.unlink()
            workdir.rmdir()


def _print_breaks(args: argparse.Namespace, breaks_by_class: dict[str, int]) -> None:
    """Breaks found per class beside the lines made per kind."""
    every = _every(args.breaks_pct)
    made = {kind: sum(1 for i in range(1, args.lines * args.nights + 1) if break_kind(i, every) == kind)
            for kind in BREAK_KINDS}
    print(f"{args.format} report, {args.breaks_pct}% of lines made differences over {args.nights} night(s):")
    for kind in BREAK_KINDS:
        print(f"  {kind:24} made {made[kind]:8,}   breaks open or resolved {breaks_by_class.get(kind, 0):8,}")
    for kind, n in sorted(breaks_by_class.items()):
        if kind not in BREAK_KINDS:
            print(f"  {kind:24} (not made)       breaks {n:8,}")


def main() -> None:
    args = _parse()
    if args.phase == "setup":
        print(json.dumps(phase_setup(args.workdir, args.lines, args.nights, _every(args.breaks_pct), args.format)))
        return
    if args.phase == "measure":
        print(json.dumps(phase_measure(args.workdir, args.nights, args.statements, args.explain)))
        return
    migrate_seconds, setup, copy_runs, result = _run(args)
    copy_seconds = statistics.median(copy_runs)
    work = result["import_seconds"] + result["reconcile_seconds"]
    goal = 6 if args.format == "adyen" else 4.5
    print(f"load average at the end: {open('/proc/loadavg').read().strip()}")
    print(f"setup: migrate {migrate_seconds:.1f}s, {args.lines * args.nights:,} orders {setup['orders_seconds']:.1f}s, "
          f"{args.nights} report(s) ({setup['size_mb']:.0f} MB each) + statement(s) {setup['file_seconds']:.1f}s")
    if args.nights > 1:
        print(f"history: {args.nights - 1} night(s) of {args.lines:,} lines imported and reconciled first in "
              f"{result['history_seconds']:.1f}s (not measured)")
    print(f"COPY into a bare table      {copy_seconds:8.2f} s  (median of {', '.join(f'{t:.2f}' for t in copy_runs)})")
    imported, reconciled = result["import_seconds"], result["reconcile_seconds"]
    print(f"import (report + statement) {imported:8.2f} s  = {imported / copy_seconds:.1f}x COPY "
          f"({result['lines']:,} lines, {result['malformed']} malformed)")
    print(f"reconcile                   {reconciled:8.2f} s  = {reconciled / copy_seconds:.1f}x COPY "
          f"(matched {result['matched']:,}, breaks {result['breaks']})")
    print(f"import + reconcile          {work:8.2f} s  = {work / copy_seconds:.1f}x COPY (goal <= {goal}x)")
    print(f"peak RSS                    {result['vmhwm_mb']:8.0f} MB VmHWM, {result['sampled_peak_rss_mb']:.0f} MB "
          f"sampled (baseline {result['baseline_rss_mb']:.0f} MB; goal < 300 MB)")
    print(f"run stats: {json.dumps(result['stats'])}")
    if args.breaks_pct:
        _print_breaks(args, result["breaks_by_class"])
    if result["statements"]:
        statements_print(result["statements"])


if __name__ == "__main__":
    main()
