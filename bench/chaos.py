"""Chaos run: checkouts against a faulty PSP while the Celery worker is SIGKILLed and restarted.

    .venv/bin/python bench/chaos.py --orders 2000 --kill-every 5

The sandbox injects 5xx errors (saved against the idempotency key, as Stripe does, and transient
ones it tells us to retry), a lagging search, dropped connections, timeouts, slow "processing" outcomes,
declines, and duplicated, reordered webhooks. Meanwhile the worker is killed every few
seconds. Then faults stop, the system converges on its own (retries, sweeper, janitor,
webhooks), and the run prints what the sandbox really charged against our books.
``--json`` prints the figures as one JSON line (the test suite runs a short version).

``--worker-pool`` / ``--worker-concurrency`` choose the Celery worker's pool (prefork, threads, gevent,
eventlet, solo) and its size; by default $CELERY_WORKER_POOL / $CELERY_WORKER_CONCURRENCY, else the
Procfile's ``worker:`` line (see ``bench/_stack.py``).

``--orders-per-checkout N`` (default 1): checkouts of N orders (N sellers), each executed by its payment event's
task; each buyer then checks out three times (a new buyer's card goes with the call creating their customer, a
returning buyer's is attached to it, at times while their first checkout is still running).

What each printed figure means: ``orders_created`` payment orders in our database (one per checkout by default);
``http_statuses`` the checkout answers (after client retries with the same key); ``worker_kills``
SIGKILLs sent to the worker's process group; ``faults_injected`` the sandbox's count per fault;
``double_charges`` orders the sandbox holds more than one succeeded charge for (must be 0); ``not_terminal``
orders neither succeeded nor failed when the run gave up (must be 0); ``converge_seconds`` from the
faults stopping until every order is terminal; ``states`` orders per state; ``audit_money`` the last line
of ``manage.py audit_money``; ``psp_captured`` / ``our_succeeded_total`` what the sandbox captured and
what we booked as succeeded (must be equal).

Disputes (``--dispute-every 10``; off by default): every n-th checkout pays with ``pm_card_createDispute``; the
sandbox disputes it shortly after, and during the chaos half of the disputes are decided won and half lost (the
last ones after the faults stop). ``disputes_psp`` / ``disputes_ours`` the disputes the sandbox opened and those we
hold; ``disputes_state_mismatch`` ours whose state is not the PSP's (must be 0); ``disputes_booked_twice`` disputes with
more than one withdrawal or reinstatement posting or wallet movement (must be 0); ``disputes_psp_taken`` /
``disputes_our_taken`` what the disputes took from the PSP balance (withdrawn less reinstated, fees included),
per the sandbox and per our ledger (must be equal).

Payouts (``--payouts``; off by default; ``bench/_chaos_payouts.py``): every seller has a payout account (some
to a closed bank account, some to one without funds), holds are off (``PAYOUT_HOLD_DAYS=0``) and every
``--payout-every`` seconds during the chaos a payout run of a new (future) date is started twice at once, every
third round the previous date again; the sandbox's transfers and payouts suffer the same faults as charges, their
webhooks are delayed, duplicated and reordered, and banks send every 7th paid payout back. Then: ``double_payouts``
(must be 0) the sum of ``double_transfers`` (our payouts the sandbox made more than one transfer for, by the
payout id its keys derive from), ``double_psp_payouts`` (more than one payout not failed) and
``sellers_paid_differently`` (connected accounts the sandbox paid out more or less to than we booked paid);
``payouts_lost`` our payouts neither paid nor failed (must be 0; ``payouts_lost_detail`` says which and why);
``payouts_state_mismatch`` ours whose state is not the sandbox's payout's (must be 0); ``psp_paid_out`` /
``our_paid_total`` / ``psp_net_transferred`` what the sandbox paid out, what we booked paid, and what is left
transferred to the connected accounts once failed payouts' transfers are taken back (all three equal).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _chaos_payouts import Payer, payout_accounts, payouts_converge  # noqa: E402
from _stack import POOLS, Stack  # noqa: E402

FAULTS = {"error_rate": 0.05, "transient_error_rate": 0.05, "drop_rate": 0.03, "timeout_rate": 0.03,
          "processing_rate": 0.05, "decline_rate": 0.03, "latency_ms": [2, 40], "timeout_delay_s": 3.0,
          "processing_delay_s": 1.0, "webhook_duplicate_rate": 0.2, "webhook_reorder": True,
          "webhook_reorder_window_s": 0.5, "dispute_delay_s": 0.5}
NO_FAULTS = {"error_rate": 0.0, "transient_error_rate": 0.0, "drop_rate": 0.0, "timeout_rate": 0.0,
             "processing_rate": 0.0, "decline_rate": 0.0, "latency_ms": [0, 0]}
# Short timers so that recovery is visible within a run; production defaults are in config/settings.
FAST_RECOVERY = {"PSP_TIMEOUT_SECONDS": "2", "PAYMENT_STALL_SECONDS": "5", "PAYMENT_UNKNOWN_CHECK_SECONDS": "2",
                 "PAYMENT_PENDING_CHECK_SECONDS": "3", "SWEEPER_INTERVAL_SECONDS": "2",
                 "JANITOR_INTERVAL_SECONDS": "2", "PAYMENT_RETRY_BASE_SECONDS": "0.5",
                 "PAYMENT_RETRY_MAX_SECONDS": "5", "PAYMENT_EXECUTE_MAX_ATTEMPTS": "20",
                 "PSP_SEARCH_CONSISTENCY_SECONDS": "4",  # the sandbox's search lags 2 s
                 "DISPUTES_RECOVERY_INTERVAL_SECONDS": "2", "PAYOUTS_RECOVERY_INTERVAL_SECONDS": "2",
                 "PAYOUT_IN_TRANSIT_CHECK_SECONDS": "5", "PAYOUT_RETURN_CHECK_SECONDS": "5"}
CONNECT_SECRET = "whsec_chaos_connect_" + os.urandom(8).hex()
# Money out: no hold (a capture is available at once) and the Connect endpoint's secret known to both sides.
PAYOUTS_ENV = {"PAYOUT_HOLD_DAYS": "0", "PSP_CONNECT_WEBHOOK_SECRET": CONNECT_SECRET,
               "PSP_SANDBOX_CONNECT_WEBHOOK_SECRET": CONNECT_SECRET}


def decide_disputes(psp: httpx.Client, log) -> None:
    """The banks decide the open disputes: won or lost by the id's parity (half each, the same every time)."""
    try:
        for dispute_id in psp.get("/_sandbox/disputes").json()["open"]:
            outcome = "won" if sum(dispute_id.encode()) % 2 else "lost"
            psp.post(f"/_sandbox/disputes/{dispute_id}/outcome", json={"outcome": outcome})
    except (httpx.HTTPError, ValueError, KeyError) as exc:  # the next round decides them
        log(f"deciding disputes: {exc!r}")


_OUR_DISPUTES = "SELECT psp_dispute_id, state FROM disputes_dispute"
_BOOKED_TWICE = """
SELECT count(DISTINCT d.id) FROM disputes_dispute d
WHERE (SELECT count(*) FROM ledger_ledgertransaction t WHERE t.idempotency_key IN
          ('dispute:' || d.id || ':withdrawn', 'dispute:' || d.id || ':reinstated'))
      > 1 + (d.reinstated_at IS NOT NULL)::int
   OR (SELECT count(*) FROM wallet_walletmovement m WHERE m.idempotency_key LIKE 'dispute:' || d.id || ':%%')
      > 2
"""
_OUR_TAKEN = """
SELECT e.currency, -sum(e.amount)::bigint FROM ledger_entry e
JOIN ledger_ledgertransaction t ON t.id = e.transaction_id JOIN ledger_account a ON a.id = e.account_id
WHERE t.idempotency_key LIKE 'dispute:%%' AND a.code = 'assets:psp_receivable' GROUP BY 1
"""


def disputes_converge(conn, psp: httpx.Client, timeout: float) -> dict:
    """Wait until we hold every dispute the sandbox opened, in its state; then the figures."""
    deadline = time.perf_counter() + timeout
    while True:
        theirs = psp.get("/_sandbox/disputes").json()
        ours = dict(conn.execute(_OUR_DISPUTES).fetchall())
        mismatch = sum(1 for dispute_id, state in theirs["states"].items() if ours.get(dispute_id) != state)
        if (len(ours) == theirs["count"] and not mismatch) or time.perf_counter() > deadline:
            break
        time.sleep(0.5)
    return {"disputes_psp": theirs["count"], "disputes_ours": len(ours), "disputes_by_status": theirs["by_status"],
            "disputes_state_mismatch": mismatch,
            "disputes_booked_twice": conn.execute(_BOOKED_TWICE).fetchone()[0],
            "disputes_psp_taken": theirs["taken"], "disputes_our_taken": dict(conn.execute(_OUR_TAKEN).fetchall())}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=500, help="payment orders (one checkout each by default)")
    parser.add_argument("--orders-per-checkout", type=int, default=1,
                        help="orders per checkout (default 1; more: each executed by its event's task, and each "
                             "buyer checks out three times, new then returning)")
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds between worker SIGKILLs")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--converge-timeout", type=float, default=600.0)
    parser.add_argument("--worker-pool", choices=POOLS, help="default: $CELERY_WORKER_POOL, else the Procfile")
    parser.add_argument("--worker-concurrency", type=int, help="default: $CELERY_WORKER_CONCURRENCY, else the Procfile")
    parser.add_argument("--dispute-every", type=int, default=0,
                        help="every n-th checkout is disputed (pm_card_createDispute), e.g. 10; 0 (default): none")
    parser.add_argument("--payouts", action="store_true", help="pay the sellers out during the chaos")
    parser.add_argument("--payout-every", type=float, default=5.0, help="seconds between payout rounds")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


def stack_env(args: argparse.Namespace) -> dict[str, str]:
    """Fast recovery timers, money out's settings, and this shell's Redis databases when it names them."""
    own_redis = {k: os.environ[k] for k in ("CELERY_BROKER_URL", "RATE_LIMIT_REDIS_URL") if os.environ.get(k)}
    return {**FAST_RECOVERY, **(PAYOUTS_ENV if args.payouts else {}), **own_redis}


def _progress(conn) -> int:
    """Moves the worker has made: the orders' and the payouts' transitions past their creation (a checkout or a
    payout run writes the first one)."""
    return conn.execute("SELECT (SELECT count(*) FROM payments_paymentordertransition WHERE from_state <> '')"
                        " + (SELECT count(*) FROM payouts_payouttransition WHERE from_state <> '')").fetchone()[0]


class Chaos:
    """The worker SIGKILLed every ``kill_every`` seconds; the banks deciding disputes; payout runs."""

    def __init__(self, stack: Stack, psp: httpx.Client, args: argparse.Namespace, log) -> None:
        self.stack, self.psp, self.args, self.log = stack, psp, args, log
        self.kills, self.stop, self.progress = 0, threading.Event(), 0
        self.payer = Payer(stack, self.stop, args.payout_every, log) if args.payouts else None
        self.threads = [threading.Thread(target=self._killer, daemon=True),
                        threading.Thread(target=self._decider, daemon=True), *([self.payer] if self.payer else [])]

    def _killer(self) -> None:
        """Each kill comes ``kill_every`` seconds after the restarted worker's first move (a transition since the
        restart; at most a minute's wait for it): on a loaded machine a worker takes longer than that to start,
        and killed before it works it only stalls the run."""
        with self.stack.db() as conn:
            while not self.stop.is_set():
                before = time.perf_counter()
                while _progress(conn) == self.progress and time.perf_counter() - before < 60:
                    if self.stop.wait(0.2):
                        return
                if self.stop.wait(self.args.kill_every):
                    return
                self.stack.kill_workers()
                self.kills += 1
                self.progress = _progress(conn)
                self.stack.start_worker()

    def _decider(self) -> None:  # the banks decide disputes during the chaos
        while not self.stop.wait(max(self.args.kill_every, 1.0)):
            decide_disputes(self.psp, self.log)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def end(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def send_checkouts(stack: Stack, args: argparse.Namespace, auth: dict[str, str], sellers: list[str]) -> list[int]:
    local = threading.local()
    per = args.orders_per_checkout

    def checkout(i: int) -> int:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=stack.web_url, headers=auth, timeout=60)
        disputed = args.dispute_every and i % args.dispute_every == 0
        body = {"buyer": {"reference": f"b{i // 3 if per > 1 else i}"},
                "payment_method": "pm_card_createDispute" if disputed else "pm_card_visa",
                "orders": [{"seller": sellers[(i * per + k) % len(sellers)], "amount": 100 + (i + k) % 5000,
                            "currency": "usd"} for k in range(per)]}
        for _ in range(5):  # a client retries a failed request with the same key
            try:
                return local.client.post("/api/v1/checkouts", json=body,
                                         headers={"Idempotency-Key": f"chaos-{i}"}).status_code
            except httpx.HTTPError:
                time.sleep(0.5)
        return 0

    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        return list(pool.map(checkout, range(-(-args.orders // per))))


def wait_until_all_tried(stack: Stack, chaos: Chaos) -> None:
    """Faults and kills go on until every order has been sent to the PSP at least once (and at least two kills
    happened, even on a short run; with payouts, at least two payout rounds)."""
    with stack.db() as conn:
        while chaos.kills < 2 or (chaos.payer and chaos.payer.rounds < 2) or conn.execute(
                "SELECT count(*) FROM payments_paymentorder WHERE state = 'not_started'").fetchone()[0]:
            time.sleep(0.2)


def orders_converge(conn, timeout: float, since: float) -> dict:
    while True:
        left = conn.execute("SELECT count(*) FROM payments_paymentorder "
                            "WHERE state NOT IN ('succeeded', 'failed')").fetchone()[0]
        if left == 0 or time.perf_counter() - since > timeout:
            break
        time.sleep(0.5)
    return {"orders_created": conn.execute("SELECT count(*) FROM payments_paymentorder").fetchone()[0],
            "not_terminal": left, "converge_seconds": round(time.perf_counter() - since, 1),
            "states": dict(conn.execute("SELECT state, count(*) FROM payments_paymentorder GROUP BY 1").fetchall()),
            "our_succeeded_total": conn.execute("SELECT coalesce(sum(amount), 0)::bigint FROM payments_paymentorder "
                                                "WHERE state = 'succeeded'").fetchone()[0]}


def psp_and_audit(stack: Stack, psp: httpx.Client) -> dict:
    time.sleep(1)  # let in-flight webhooks land before reading the PSP's record
    money = psp.get("/_sandbox/charges").json()
    try:
        audit = stack.manage("audit_money").splitlines()[-1]
    except Exception as exc:  # noqa: BLE001  (report, don't crash: the figure is the point)
        audit = f"FAILED: {getattr(exc, 'stdout', exc)}"
    return {"faults_injected": money.get("faults", {}), "faults_injected_total": sum(money.get("faults", {}).values()),
            "double_charges": len(money["double_charges"]), "audit_money": audit,
            "psp_captured": money["totals"].get("usd", {}).get("captured", 0)}


def main() -> None:
    args = parse_args()
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    with Stack(web_workers=3, worker_pool=args.worker_pool, worker_concurrency=args.worker_concurrency, beat=True,
               extra_env=stack_env(args)) as stack:
        log(f"stack: {stack.describe()}; celery beat")
        psp = httpx.Client(base_url=stack.psp_url, timeout=10)
        auth = {"Authorization": f"Bearer {stack.manage('create_api_key', 'chaos')}"}
        sellers = [httpx.post(f"{stack.web_url}/api/v1/sellers", json={"name": f"s{i}"}, headers=auth).json()["id"]
                   for i in range(20)]
        if args.payouts:
            payout_accounts(stack, sellers, auth)
        psp.post("/_sandbox/config", json={**FAULTS, "webhook_url": f"{stack.web_url}/webhooks/psp"}
                 ).raise_for_status()
        started, chaos = time.perf_counter(), Chaos(stack, psp, args, log)
        chaos.start()
        statuses = send_checkouts(stack, args, auth, sellers)
        wait_until_all_tried(stack, chaos)
        chaos.end()
        psp.post("/_sandbox/config", json=NO_FAULTS).raise_for_status()
        while args.dispute_every and psp.get("/_sandbox/disputes").json()["scheduled"]:
            time.sleep(0.2)  # every dispute opened, then each one decided
        decide_disputes(psp, log)
        faults_stopped = time.perf_counter()
        log(f"{len(statuses)} checkouts ({args.orders} orders) sent and every order tried at least once in "
            f"{faults_stopped - started:.1f} s; "
            f"worker kills: {chaos.kills}; faults stopped, converging...")
        with stack.db() as conn:
            orders = orders_converge(conn, args.converge_timeout, faults_stopped)
            disputes = disputes_converge(conn, psp, args.converge_timeout)
            payouts = payouts_converge(conn, psp, args.converge_timeout, log) if args.payouts else {}
        if chaos.payer:
            payouts.update(payout_rounds=chaos.payer.rounds, payout_runs=chaos.payer.runs,
                           payout_runs_failed=chaos.payer.failed_runs)
        result = {"http_statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
                  "worker_kills": chaos.kills, **orders, **psp_and_audit(stack, psp), **disputes, **payouts}
        result["captured_equals_succeeded"] = result["psp_captured"] == result["our_succeeded_total"]
        if args.json:
            print(json.dumps(result))
        else:
            for key_, value in result.items():
                print(f"{key_:<28} {value}")


if __name__ == "__main__":
    main()
