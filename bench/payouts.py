"""A payout run over many sellers with balances: selecting, creating and posting every payout, timed.

    .venv/bin/python bench/payouts.py [--sellers 100000] [--batch 1000]

On its own database ``marketplace_sview_bench`` (created, migrated, dropped; ``BENCH_KEEP_DB=1`` keeps it),
``--sellers`` sellers are written set-based through the owner's connection (INSERT ... SELECT
generate_series), each with a payout account, a wallet whose one capture credit is out of its hold, and that
capture's ledger posting (so the books balance before and after). Then, in a fresh process, ``payouts_run``
is timed: selecting the balances, creating the payouts with their audit rows, one ledger posting and one
wallet debit per payout, the run's report, and one broker message per batch on commit (to a Redis queue of
the bench's own, deleted after). The PSP calls happen in the workers, after: not in the figure. The same
process prints its peak RSS, the statements it sent, a second run of the same date (no new payout) and
checks the books: one ``created`` posting per payout, payouts in transit = the total paid out, every wallet
at zero. The baseline, in the same run: a plain ``INSERT ... SELECT generate_series`` of as many rows into a
bare table shaped like the payouts (median of three, each after a CHECKPOINT, as the run is).

``--psp-sample N`` (default 0: skipped) then sends N of the payouts through the PSP sandbox (a process of
its own; the transfer and the payout per payout, one at a time) and prints what a payout costs there.
Goal (issue #10): the run <= 30 s on this machine.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "marketplace_sview_bench"
DAY = date(2026, 12, 1)


def _env(queue: str) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "DJANGO_DEBUG": "false",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}", "LOG_LEVEL": "WARNING",
            "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/10"),
            "RATE_LIMIT_REDIS_URL": os.environ.get("BENCH_RATE_LIMIT_REDIS_URL", "redis://127.0.0.1:6379/11"),
            "CELERY_TASK_DEFAULT_QUEUE": queue}


def _child(phase: str, queue: str, **options) -> dict:
    args = [sys.executable, __file__, "--phase", phase, "--queue", queue]
    for name, value in options.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    out = subprocess.run(args, cwd=ROOT, env=_env(queue), capture_output=True, text=True)
    if out.returncode:
        sys.stderr.write(out.stderr[-5000:])
        raise SystemExit(f"the {phase} phase failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- setup (not timed with the run) ------------------------------------------------------------------


def phase_setup(sellers: int) -> dict:
    _django()
    from django.db import connection, transaction

    from core.models import ApiClient
    from ledger import accounts
    from ledger.services import _accounts_ensure

    started = time.perf_counter()
    client = ApiClient.objects.create(name="bench", key_prefix="bench", key_hash=uuid.uuid4().hex)
    _accounts_ensure([accounts.PSP_RECEIVABLE, accounts.PAYOUTS_IN_TRANSIT])
    seller = "'sel_b' || lpad(i::text, 7, '0')"
    amount = "1000 + (i %% 50000)"  # 10.00 to 509.99 USD (%% : the statements take parameters)
    capture_key = "'payment_order:ord_b' || i || ':capture'"
    statements = [
        f"INSERT INTO payments_seller (id, client_id, name, external_reference, status, created_at)"
        f" SELECT {seller}, %(client)s, 'Bench seller ' || i, '', 'active', now() - interval '30 days'"
        f" FROM generate_series(1, %(n)s) i",
        f"INSERT INTO payouts_payoutaccount (id, seller_id, psp_account_id, psp_bank_account_id, bank_last4,"
        f" bank_name, bank_country, currency, created_at, updated_at, unusable_reason)"
        f" SELECT 'pa_b' || i, {seller}, 'acct_b' || i, 'ba_b' || i, '6789', 'Bench bank', 'US', 'usd', now(), now(),"
        f" ''"
        f" FROM generate_series(1, %(n)s) i",
        f"INSERT INTO wallet_wallet (owner_id, currency, balance, updated_at)"
        f" SELECT {seller}, 'usd', {amount}, now() - interval '3 days' FROM generate_series(1, %(n)s) i",
        # One capture credit per wallet, its hold over.
        f"INSERT INTO wallet_walletmovement (wallet_id, amount, idempotency_key, reason, created_at, hold_until,"
        f" reserve_amount, reserve_until)"
        f" SELECT w.id, w.balance, {capture_key}, 'bench capture', now() - interval '3 days',"
        f" now() - interval '1 day', 0, now() - interval '1 day'"
        f" FROM generate_series(1, %(n)s) i JOIN wallet_wallet w ON w.owner_id = {seller} AND w.currency = 'usd'",
        f"INSERT INTO ledger_account (code, name, kind, created_at)"
        f" SELECT '{accounts.SELLER_PAYABLE_PREFIX}' || {seller}, 'Payable to seller ' || {seller}, 'liability',"
        f" now() FROM generate_series(1, %(n)s) i",
        f"INSERT INTO ledger_ledgertransaction (idempotency_key, description, reference, occurred_at, created_at)"
        f" SELECT {capture_key}, 'Bench capture ' || i, 'ord_b' || i, now() - interval '3 days', now()"
        f" FROM generate_series(1, %(n)s) i",
        # The capture's entries: PSP receivable debited, the seller's payable credited.
        f"INSERT INTO ledger_entry (transaction_id, account_id, currency, amount)"
        f" SELECT t.id, CASE WHEN leg = 1 THEN r.id ELSE p.id END, 'usd', CASE WHEN leg = 1 THEN 1 ELSE -1 END"
        f" * ({amount}) FROM generate_series(1, %(n)s) i"
        f" JOIN ledger_ledgertransaction t ON t.idempotency_key = {capture_key}"
        f" JOIN ledger_account p ON p.code = '{accounts.SELLER_PAYABLE_PREFIX}' || {seller}"
        f" CROSS JOIN (SELECT id FROM ledger_account WHERE code = '{accounts.PSP_RECEIVABLE}') r"
        f" CROSS JOIN generate_series(1, 2) leg",
    ]
    with transaction.atomic(), connection.cursor() as cursor:  # the ledger checks its postings at commit
        for statement in statements:
            cursor.execute(statement, {"client": client.pk, "n": sellers})
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {"setup_seconds": time.perf_counter() - started}


# --- measure -----------------------------------------------------------------------------------------


class _StatementCounter:
    """A ``connection.execute_wrapper``: counts the statements and sums their seconds by kind."""

    def __init__(self) -> None:
        self.n = 0
        self.by_kind: dict[str, float] = {}

    def __call__(self, execute, sql_, params, many, context):
        self.n += 1
        started = time.perf_counter()
        try:
            return execute(sql_, params, many, context)
        finally:
            kind = " ".join(sql_.split())[:70]
            self.by_kind[kind] = self.by_kind.get(kind, 0.0) + time.perf_counter() - started


def _books_checks(run, again) -> dict:
    """What the books hold after the run (and a second run of the same date)."""
    from django.db.models import Sum

    from ledger import accounts
    from ledger import selectors as ledger_selectors
    from ledger.models import LedgerTransaction
    from payouts.models import Payout, PayoutRunItem
    from wallet.models import Wallet

    return {
        "payouts": Payout.objects.count(),
        "created_postings": LedgerTransaction.objects.filter(idempotency_key__startswith="payout:",
                                                             idempotency_key__endswith=":created").count(),
        "paid_out": Payout.objects.aggregate(total=Sum("amount"))["total"],
        "in_transit": -ledger_selectors.account_balance(code=accounts.PAYOUTS_IN_TRANSIT, currency="usd"),
        "wallets_not_zero": Wallet.objects.with_total().exclude(total=0).count(),
        "report_lines": PayoutRunItem.objects.filter(run=run).count(),
        "second_run_created": again.payouts_created, "second_run_lines": again.items.count(),
    }


def phase_measure(sellers: int, batch: int, queue: str) -> dict:
    _django()
    from django.db import connection
    from django.utils import timezone

    from config.celery_app import app
    from payouts.services import payouts_run
    from wallet import selectors as wallet_selectors

    count = _StatementCounter()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    started = time.perf_counter()
    selected = len(wallet_selectors.wallets_available(as_of=timezone.now()))
    select_seconds = time.perf_counter() - started  # the run's first statement, measured apart (warms it too)

    with connection.execute_wrapper(count):
        cpu_before = _cpu_seconds(backend), _own_cpu_seconds()
        started = time.perf_counter()
        run = payouts_run(payout_date=DAY, actor="bench", batch_size=batch)
        run_seconds = time.perf_counter() - started
        backend_cpu, own_cpu = _cpu_seconds(backend) - cpu_before[0], _own_cpu_seconds() - cpu_before[1]
    run_statements = count.n
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    started = time.perf_counter()
    again = payouts_run(payout_date=DAY, actor="bench")  # the same date: every wallet is empty now
    again_seconds = time.perf_counter() - started

    with app.connection_for_write() as conn:
        messages = conn.default_channel.queue_declare(queue, passive=True).message_count
        conn.default_channel.queue_delete(queue)

    checks = _books_checks(run, again)
    return {"select_seconds": select_seconds, "selected": selected, "run_seconds": run_seconds,
            "created": run.payouts_created, "skipped": run.skipped, "statements": run_statements,
            "rss_before_mb": rss_before / 1024, "rss_peak_mb": rss_peak / 1024, "again_seconds": again_seconds,
            "messages": messages, "checks": checks, "backend_cpu": backend_cpu, "own_cpu": own_cpu,
            "load": os.getloadavg()[0],
            "slowest": sorted(count.by_kind.items(), key=lambda kv: -kv[1])[:6]}


def _cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a process on this machine (the PostgreSQL backend of our connection)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the PSP, apart ----------------------------------------------------------------------------------


def phase_psp(sample: int, port: int) -> dict:
    _django()
    from django.conf import settings

    from payouts.models import Payout, PayoutAccount, PayoutState
    from payouts.psp import get_payout_provider
    from payouts.psp.base import ConnectedAccountRequest
    from payouts.services import payout_execute

    settings.PSP_API_BASE = f"http://127.0.0.1:{port}"
    payouts = list(Payout.objects.order_by("id").values_list("id", "seller_id")[:sample])
    psp = get_payout_provider()
    started = time.perf_counter()
    for _, seller in payouts:  # a connected account at the PSP for each sampled seller, as onboarding makes
        opened = psp.create_connected_account(ConnectedAccountRequest(
            idempotency_key=f"bench:{seller}", seller_id=seller, country="US", bank_token="btok_us_verified"))
        PayoutAccount.objects.filter(seller_id=seller).update(psp_account_id=opened.psp_reference,
                                                              psp_bank_account_id=opened.bank_account.psp_reference)
    connect_seconds = time.perf_counter() - started
    for payout_id, seller in payouts:
        account = PayoutAccount.objects.get(seller_id=seller)
        Payout.objects.filter(pk=payout_id).update(psp_account_id=account.psp_account_id,
                                                   psp_bank_account_id=account.psp_bank_account_id)
    started = time.perf_counter()
    states = [payout_execute(payout_id=payout_id, actor="bench") for payout_id, _ in payouts]
    execute_seconds = time.perf_counter() - started
    return {"sample": len(payouts), "connect_seconds": connect_seconds, "execute_seconds": execute_seconds,
            "in_transit_or_paid": sum(s in (PayoutState.IN_TRANSIT, PayoutState.PAID) for s in states)}


def insert_baseline(rows: int, runs: int = 3) -> list[float]:
    """Seconds of one ``INSERT ... SELECT generate_series`` of ``rows`` rows into a bare table shaped like the
    payouts (a primary key, no other index), each run after a CHECKPOINT."""
    times = []
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=DB_NAME, autocommit=True) as conn:
        for _ in range(runs):
            conn.execute("CREATE TABLE insert_baseline (id text PRIMARY KEY, seller_id text, account_id text,"
                         " amount bigint, currency text, payout_date date, state text, created_at timestamptz)")
            conn.execute("CHECKPOINT")
            started = time.perf_counter()
            conn.execute("INSERT INTO insert_baseline SELECT 'pyt_' || i, 'sel_' || i, 'pa_' || i, i, 'usd',"
                         " current_date, 'pending', now() FROM generate_series(1, %s) i", [rows])
            times.append(time.perf_counter() - started)
            conn.execute("DROP TABLE insert_baseline")
    return times


def _sandbox(port: int, workdir: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "psp_sandbox", "--host", "127.0.0.1", "--port", str(port),
                             "--db", str(workdir / "sandbox.sqlite3")], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    import urllib.request

    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_sandbox/config", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the PSP sandbox did not start")


def _psp_phase(queue: str, sample: int) -> dict:
    """``sample`` payouts sent through a PSP sandbox of the bench's own."""
    import socket
    import tempfile

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = Path(tempfile.mkdtemp(prefix="bench-payouts-"))
    sandbox = _sandbox(port, workdir)
    try:
        return _child("psp", queue, psp_sample=sample, port=port)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=20)


def _bench(args, queue: str) -> dict:
    """The bench's database created and migrated, the sellers set up, the baseline and the run measured (and the
    PSP sample sent); the database dropped after unless ``BENCH_KEEP_DB``."""
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB_NAME)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))
    try:
        started = time.perf_counter()
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=_env(queue),
                       check=True, capture_output=True)
        figures = {"migrate_seconds": time.perf_counter() - started}
        figures["setup"] = _child("setup", queue, sellers=args.sellers)
        figures["baseline"] = insert_baseline(args.sellers)
        figures["result"] = _child("measure", queue, sellers=args.sellers, batch=args.batch)
        figures["psp"] = _psp_phase(queue, args.psp_sample) if args.psp_sample else None
        return figures
    finally:
        if not os.environ.get("BENCH_KEEP_DB"):
            with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB_NAME)))


def _report(args, migrate_seconds: float, setup: dict, baseline: list[float], result: dict, psp: dict | None
            ) -> bool:
    """Print the figures; whether the books are consistent."""
    n = result["created"]
    insert = statistics.median(baseline)
    print(f"setup: migrate {migrate_seconds:.1f}s, {args.sellers:,} sellers with payout accounts, available "
          f"balances and their capture postings {setup['setup_seconds']:.1f}s")
    print(f"selecting the balances       {result['select_seconds']:8.2f} s  ({result['selected']:,} wallets; "
          f"the run's first statement, measured apart)")
    print(f"payout run (select + create + post, batches of {args.batch})")
    print(f"                             {result['run_seconds']:8.2f} s  {n:,} payouts, "
          f"{n / result['run_seconds']:,.0f} payouts/s, {result['skipped']} skipped (goal <= 30 s)")
    cpu = result["backend_cpu"] + result["own_cpu"]
    print(f"CPU of the run               {cpu:8.2f} s  = PostgreSQL backend {result['backend_cpu']:.2f} s + this "
          f"process {result['own_cpu']:.2f} s (one after the other: about the run's time on an idle machine; "
          f"load average {result['load']:.1f} on {os.cpu_count()} cores during it)")
    print(f"statements                   {result['statements']:8,}     ({result['statements'] / max(n, 1):.3f} per "
          f"payout), {result['messages']} broker messages (one per batch)")
    print(f"peak RSS                     {result['rss_peak_mb']:8.0f} MB (ru_maxrss; {result['rss_before_mb']:.0f} MB "
          f"before the run)")
    print(f"baseline: INSERT ... SELECT  {insert:8.2f} s  {args.sellers:,} rows into a bare table "
          f"(median of {', '.join(f'{t:.2f}' for t in baseline)}): the run = {result['run_seconds'] / insert:.1f}x")
    print(f"the same date again          {result['again_seconds']:8.2f} s  "
          f"{result['checks']['second_run_created']} payouts created")
    print("time in the run's statements, the slowest kinds: " + "; ".join(
        f"{seconds:.2f}s {kind}" for kind, seconds in result["slowest"]))
    print(f"checks: {json.dumps(result['checks'])}")
    ok = (result["checks"]["payouts"] == result["checks"]["created_postings"] == n == args.sellers
          and result["checks"]["paid_out"] == result["checks"]["in_transit"]
          and result["checks"]["wallets_not_zero"] == 0 and result["checks"]["second_run_created"] == 0)
    print("books: " + ("consistent" if ok else "NOT CONSISTENT"))
    if psp:
        per = psp["execute_seconds"] / max(psp["sample"], 1)
        print(f"PSP (apart, not in the run): {psp['sample']} payouts sent one at a time (transfer + payout each) "
              f"in {psp['execute_seconds']:.2f} s = {per * 1000:.1f} ms each, {psp['in_transit_or_paid']} accepted; "
              f"{args.sellers:,} would take {per * args.sellers / 60:.1f} min on one worker thread")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sellers", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="sellers per transaction of the run")
    parser.add_argument("--psp-sample", type=int, default=0, help="payouts then sent through the PSP sandbox")
    parser.add_argument("--phase", choices=("setup", "measure", "psp"), help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "setup":
        print(json.dumps(phase_setup(args.sellers)))
        return
    if args.phase == "measure":
        print(json.dumps(phase_measure(args.sellers, args.batch, args.queue)))
        return
    if args.phase == "psp":
        print(json.dumps(phase_psp(args.psp_sample, args.port)))
        return
    figures = _bench(args, f"bench-payouts-{uuid.uuid4().hex[:10]}")
    sys.exit(0 if _report(args, **figures) else 1)


if __name__ == "__main__":
    main()
