"""Settlement import + reconciliation throughput and memory, against PostgreSQL's own COPY.

    .venv/bin/python bench/reconcile.py --lines 1000000 [--nights 2] [--breaks-pct 1] [--format adyen]

On a fresh database ``marketplace_bench_*`` (created, migrated, dropped; ``BENCH_KEEP_DB=1``
keeps it): inserts ``--lines`` succeeded payment orders a night with set-based SQL, their keys and
indexes built after (``_reconcile_setup``), and meanwhile writes each night's Stripe itemized payout
reconciliation report with one charge row per order plus the payout row, and the bank's camt.053 credit
of that payout (setup, timed apart, per phase). With ``--nights`` N > 1, a process of its own imports and
reconciles nights 1..N-1 (the history, timed per night), with ``VACUUM (ANALYZE)`` after each as
autovacuum would (``BENCH_NO_VACUUM=1``: none). Then, in a fresh process, measures
``settlement_file_import`` of both files and ``reconciliation_run``, with that process's peak RSS
(VmHWM, and a 20 ms sampling thread on VmRSS); and, in the same run,
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
``BENCH_SNAPSHOT=1`` copies the database after the history, before the measured night (``<db>_snap``, never
dropped by the bench: drop it yourself), so that the measured night can be re-run on copies of it
(``CREATE DATABASE x TEMPLATE <db>_snap``, then ``--phase measure --db x --workdir var/bench/<db>``).
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
from datetime import timedelta
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reconcile_files import (  # noqa: E402
    BREAK_KINDS,
    DAY,
    break_kind,
    night_files,
)
from _statements import statements_measured, statements_print  # noqa: E402


def _every(breaks_pct: float) -> int:
    return round(100 / breaks_pct) if breaks_pct > 0 else 0


def _env(db_name: str) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "DJANGO_DEBUG": "false",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}", "LOG_LEVEL": "WARNING"}


def _child(phase: str, db_name: str, workdir: Path, args: argparse.Namespace) -> dict:
    """Runs one phase in a fresh process; its progress (stderr) goes to ours, its result is its last line."""
    out = subprocess.run([sys.executable, __file__, "--phase", phase, "--db", db_name, "--workdir", str(workdir),
                          "--lines", str(args.lines), "--nights", str(args.nights), "--breaks-pct",
                          str(args.breaks_pct), "--format", args.format]
                         + (["--statements"] if args.statements else [])
                         + (["--explain", str(args.explain.resolve())] if args.explain else []),
                         cwd=ROOT, env=_env(db_name), stdout=subprocess.PIPE, text=True)
    out.check_returncode()
    return json.loads(out.stdout.strip().splitlines()[-1])


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- setup (timed apart; _reconcile_setup) ---------------------------------------------------


def phase_setup(workdir: Path, lines: int, nights: int, every: int, report_format: str) -> dict:
    _django()
    from _reconcile_setup import setup

    return setup(workdir, lines, nights, every, report_format)


def phase_history(workdir: Path, nights: int) -> dict:
    """The nights before the measured one, in a process of their own (the measured one's peak RSS is its own)."""
    _django()
    from _reconcile_setup import history

    return {"nights": history(workdir, nights, vacuum=not os.environ.get("BENCH_NO_VACUUM"))}


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

    from reconciliation.importers import adyen_arrow, stripe_arrow  # noqa: F401 (pyarrow loaded before the
    from reconciliation.models import Break  # measurement, as in a worker that has imported a file before)
    from reconciliation.selectors import settlement_lines_with_match
    from reconciliation.services import reconciliation_run, settlement_file_import

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
        "stats": run.stats,
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
    parser.add_argument("--phase", choices=("setup", "history", "measure"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {open('/proc/loadavg').read().split(' ', 1)[0]}] {message}",
          file=sys.stderr, flush=True)


def _run(args: argparse.Namespace) -> tuple[dict, list[float], dict]:
    """A fresh database (``<BENCH_DB_PREFIX><BENCH_DB_TAG><hex>``, the prefix ``marketplace_bench_`` by default):
    migrate, set up, history, COPY, measure; dropped after unless ``BENCH_KEEP_DB``. Returns the setup (migrate and
    history seconds in it), the COPY runs and the measured phase."""
    prefix = os.environ.get("BENCH_DB_PREFIX", "marketplace_bench_")
    db_name = f"{prefix}{os.environ.get('BENCH_DB_TAG', '')}{uuid.uuid4().hex[:8]}"
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
        setup["migrate_seconds"] = migrate_seconds
        _progress(f"setup: {json.dumps(setup)}")
        setup["history"] = _child("history", db_name, workdir, args)["nights"] if args.nights > 1 else []
        if os.environ.get("BENCH_SNAPSHOT"):  # the database before the measured night, to re-run it (--phase measure)
            with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(db_name + "_snap"), sql.Identifier(db_name)))
            _progress(f"snapshot before the measured night: {db_name}_snap")
        copy_runs = copy_baseline(db_name, Path(setup["report"]))
        return setup, copy_runs, _child("measure", db_name, workdir, args)
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


def _print_setup(args: argparse.Namespace, setup: dict) -> None:
    """Setup seconds per phase (the files are written while the orders are inserted), then the history's."""
    steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in setup["orders"].items())
    print(f"setup {setup['setup_seconds']:.1f}s after migrate {setup['migrate_seconds']:.1f}s: "
          f"{args.lines * args.nights:,} orders {setup['orders_seconds']:.1f}s ({steps}); meanwhile {args.nights} "
          f"report(s) ({setup['size_mb']:.0f} MB each) + statement(s) written in {setup['file_seconds']:.1f}s")
    if setup["history"]:
        total = {step: sum(night[step] for night in setup["history"]) for step in ("import", "reconcile", "vacuum")}
        print(f"history: {args.nights - 1} night(s) of {args.lines:,} lines imported and reconciled first, not "
              f"measured, in {sum(total.values()):.1f}s: " + ", ".join(f"{k} {v:.1f}s" for k, v in total.items()))
        for night, steps in enumerate(setup["history"]):
            print(f"  night {night + 1}: " + ", ".join(f"{k} {v:.1f}s" for k, v in steps.items()))


def main() -> None:
    args = _parse()
    if args.phase == "setup":
        print(json.dumps(phase_setup(args.workdir, args.lines, args.nights, _every(args.breaks_pct), args.format)))
        return
    if args.phase == "history":
        print(json.dumps(phase_history(args.workdir, args.nights)))
        return
    if args.phase == "measure":
        print(json.dumps(phase_measure(args.workdir, args.nights, args.statements, args.explain)))
        return
    print(f"load average at the start: {open('/proc/loadavg').read().strip()}", flush=True)
    setup, copy_runs, result = _run(args)
    copy_seconds = statistics.median(copy_runs)
    work = result["import_seconds"] + result["reconcile_seconds"]
    goal = 6 if args.format == "adyen" else 4.5
    print(f"load average at the end: {open('/proc/loadavg').read().strip()}")
    _print_setup(args, setup)
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
