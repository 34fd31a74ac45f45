"""Checkout and pay-in throughput against a stack of our own (gunicorn DEBUG off, Celery, PSP sandbox).

    .venv/bin/python bench/checkout.py --checkouts 2000              # checkouts while the worker drains
    .venv/bin/python bench/checkout.py --drain 2000                  # the executor alone, on queued orders
    .venv/bin/python bench/checkout.py --drain 2000 --hot-seller     # every order to one seller
    .venv/bin/python bench/checkout.py --drain 2000 --psp-latency-ms 250 --worker-pool threads --worker-concurrency 200
    .venv/bin/python bench/checkout.py --checkouts 2000 --half-load  # + checkout p99 at half the max load

Everything runs on loopback against a fresh database ``marketplace_bench_*`` (see ``bench/_stack.py``
for the worker's pool and concurrency: flags, else $CELERY_WORKER_POOL / $CELERY_WORKER_CONCURRENCY,
else the Procfile's ``worker:`` line). Figures are printed, never asserted. What each line means:

``machine before the run``  busy share of all cores over 1 s with the stack idle (should be ~0%).
``pgbench TPC-B``  the database's ceiling, measured in this run before any load: 8 clients for
                   ``--pgbench-seconds`` against a scratch database (skipped if pgbench is not installed).
``GET /api/v1/ping``  a trivial authenticated DRF endpoint on the same gunicorn: the web stack's ceiling.
``POST /api/v1/checkouts``  one checkout (``--orders-per-checkout`` orders) per request, from
                   ``--concurrency`` client threads as fast as they go: req/s, p50/p99 latency, non-201s.
                   Normal mode: the worker drains at the same time; drain mode: the worker is stopped
                   ("checkout alone").
``... at half load``  (``--half-load``) a second pass paced at 50% of the first pass's req/s; latency
                   counted from each request's scheduled send time (no coordinated omission).
``all N orders terminal``  normal mode: seconds from the first checkout until every order is
                   succeeded/failed, and orders/s end to end.
``drained N orders``  drain mode: the worker is started once every order is queued; orders/s from the
                   worker's start until every order is terminal (and from the first order picked up,
                   i.e. without the worker's boot).
``machine CPU``    /proc/stat busy time of all cores (all processes) over that window, per settled order
                   (or per checkout), and its split per process: web (gunicorn), worker (Celery + pool
                   children), psp (sandbox), "postgres: our db" (live backends of our database),
                   postgres (the rest of the server: background, exited backends, other databases), redis,
                   bench client (this script); "other" is everything else (kernel, other users' work:
                   run on a quiet machine; per-process times and /proc/stat are sampled differently,
                   so "other" can come out a few % negative); then PostgreSQL's sessions opened on our database (a new
                   connection per task shows here) and commits on other databases (someone else's load).
``context switches``  per settled order (or checkout), voluntary / involuntary, of each stack process group
                   (every thread) and of our database's backends (``bench/_switches.py``): voluntary ones
                   are the waits (round trips, locks, the GIL) and barely move with the machine's load;
                   involuntary ones are preemptions and grow with the busy processes on the cores.
``ratios``         checkout req/s / ping req/s; settled orders/s / pgbench tps.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _lean_http import ERRORS as LEAN_ERRORS  # noqa: E402
from _lean_http import LeanClient  # noqa: E402
from _stack import POOLS, Stack, cpu_delta, format_cpu  # noqa: E402
from _switches import format_switches, switch_snapshot  # noqa: E402

# The load client (``--client``): the standard library's, one request per connection, light enough that the
# latencies are the server's (``_lean_http``); or httpx, as the figures before 2026-12-06 were measured.
CLIENTS = {"stdlib": LeanClient, "httpx": lambda: httpx.Client(timeout=60)}

TERMINAL = ("succeeded", "failed")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def drive(n: int, concurrency: int, request, rate: float | None = None,
          client: str = "stdlib") -> tuple[float, list[float], Counter]:
    """Send ``n`` requests from ``concurrency`` threads, as fast as they go or paced at ``rate`` req/s.

    Returns (elapsed seconds, latencies, Counter of unexpected answers). A paced request's latency runs
    from its scheduled send time, so a stalled server is not hidden by the client waiting for it.
    """
    local = threading.local()
    latencies: list[float] = []
    errors: Counter = Counter()
    lock = threading.Lock()
    started = time.perf_counter()

    def one(i: int) -> None:
        if not hasattr(local, "client"):
            local.client = CLIENTS[client]()
        scheduled = None
        if rate:
            scheduled = started + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        sent = time.perf_counter()
        try:
            outcome = request(local.client, i)
        except (httpx.HTTPError, *LEAN_ERRORS) as exc:
            outcome = type(exc).__name__
        latency = time.perf_counter() - min(sent, scheduled or sent)
        with lock:
            latencies.append(latency)
            if outcome is not True:
                errors[str(outcome)] += 1

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(n)))
    return time.perf_counter() - started, latencies, errors


def report(label: str, n: int, elapsed: float, latencies: list[float], errors: Counter) -> float:
    rate = n / elapsed
    shown = ", ".join(f"{k}: {v}" for k, v in errors.most_common(5)) if errors else "0"
    print(f"{label:<36} {n:>6} req  {rate:>8.1f} req/s  p50 {statistics.median(latencies) * 1000:>7.1f} ms  "
          f"p99 {percentile(latencies, 0.99) * 1000:>7.1f} ms  errors {shown}")
    return rate


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkouts", type=int, default=1000, help="normal mode: checkouts to send (default 1000)")
    parser.add_argument("--drain", type=int, metavar="N", default=0,
                        help="drain mode: queue N orders with the worker stopped, then start it")
    parser.add_argument("--orders-per-checkout", type=int, default=2,
                        help="default 2 (1 with --hot-seller: the API takes one order per seller per checkout)")
    parser.add_argument("--sellers", type=int, default=1000, help="orders are spread over this many (default 1000)")
    parser.add_argument("--hot-seller", action="store_true", help="every order goes to one seller")
    parser.add_argument("--psp-latency-ms", type=int, default=0, help="the sandbox answers every call in N ms")
    parser.add_argument("--half-load", action="store_true",
                        help="a second checkout pass paced at 50%% of the first's req/s (its p99)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads (default 16)")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="stdlib",
                        help="load client: stdlib (default; one request per connection, light) or httpx")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--worker-pool", choices=POOLS, help="default: $CELERY_WORKER_POOL, else the Procfile")
    parser.add_argument("--worker-concurrency", type=int,
                        help="default: $CELERY_WORKER_CONCURRENCY, else the Procfile")
    parser.add_argument("--worker-processes", type=int,
                        help="Celery worker processes (default: $WORKER_PROCESSES, else one per core)")
    parser.add_argument("--pgbench-seconds", type=int, default=10, help="0 skips the pgbench baseline (default 10)")
    parser.add_argument("--broker-db", type=int, default=6, help="the Celery broker's Redis db (default 6)")
    parser.add_argument("--ratelimit-db", type=int, default=7, help="the rate limiter's Redis db (default 7)")
    parser.add_argument("--database", help="prefix of the run's database names: <prefix>_bench_<id> (default "
                                           "$BENCH_DATABASE_PREFIX, else marketplace)")
    parser.add_argument("--timeout", type=float, default=1800, help="give up waiting for terminal orders after (s)")
    return parser.parse_args()


class Run:
    """One bench run against a started ``Stack``: its load's shape, the sellers and key it made, and each phase."""

    def __init__(self, args: argparse.Namespace, stack: Stack) -> None:
        self.args, self.stack = args, stack
        self.per_checkout = 1 if args.hot_seller else args.orders_per_checkout
        self.n_checkouts = math.ceil(args.drain / self.per_checkout) if args.drain else args.checkouts
        passes = 2 if args.half_load else 1
        self.n_sellers = 1 if args.hot_seller else max(
            self.per_checkout, min(args.sellers, self.n_checkouts * self.per_checkout * passes))
        self.auth: dict[str, str] = {}
        self.sellers: list[str] = [""] * self.n_sellers
        self.pg: dict | None = None

    # --- before the load ------------------------------------------------------------------

    def baselines(self) -> None:
        """The machine's idleness, the sandbox's latency set, pgbench's TPC-B."""
        args, stack = self.args, self.stack
        print(f"stack: {stack.describe()}")
        print(f"load: {'drain' if args.drain else 'normal'} mode; client {args.client}, threads {args.concurrency}; "
              f"{self.n_checkouts} checkouts x {self.per_checkout} orders; orders spread over {self.n_sellers} "
              f"seller(s); PSP latency {args.psp_latency_ms} ms")
        quiet = stack.cpu_snapshot()
        time.sleep(1)
        idle = cpu_delta(quiet, stack.cpu_snapshot())["machine"] / (1000 * (os.cpu_count() or 1))
        print(f"machine before the run: {idle:.0%} busy over 1 s" + (" (not quiet: figures will be off)"
                                                                    if idle > 0.1 else ""))
        psp = httpx.Client(base_url=stack.psp_url, timeout=10)
        psp.post("/_sandbox/config", json={"latency_ms": [args.psp_latency_ms] * 2}).raise_for_status()
        self.pg = pg = stack.pgbench(seconds=args.pgbench_seconds)
        if pg:
            print(f"{'pgbench TPC-B':<36} {pg['tps']:>8.1f} tps  ({pg['clients']} clients, {pg['seconds']} s, "
                  f"scale {pg['scale']}, latency avg {pg['latency_ms']:.1f} ms)")
        else:
            print("pgbench TPC-B: skipped (" + ("--pgbench-seconds 0" if args.pgbench_seconds <= 0
                                                 else "pgbench not installed") + ")")

    def sellers_create(self) -> None:
        self.auth = {"Authorization": f"Bearer {self.stack.manage('create_api_key', 'bench')}"}

        def create_seller(client: httpx.Client, i: int) -> bool | int:
            response = client.post(f"{self.stack.web_url}/api/v1/sellers", json={"name": f"s{i}"}, headers=self.auth)
            if response.status_code == 201:
                self.sellers[i] = response.json()["id"]
                return True
            return response.status_code

        _, _, errors = drive(self.n_sellers, self.args.concurrency, create_seller, client=self.args.client)
        if errors:
            raise SystemExit(f"creating sellers failed: {dict(errors)}")

    def ping(self, client: httpx.Client, i: int) -> bool | int:
        response = client.get(f"{self.stack.web_url}/api/v1/ping", headers=self.auth)
        return response.status_code == 200 or response.status_code

    def ping_rate(self) -> float:
        """The trivial authenticated endpoint's req/s on the same gunicorn: the checkout's baseline."""
        n_ping = max(500, self.n_checkouts)
        drive(min(200, n_ping), self.args.concurrency, self.ping, client=self.args.client)  # warm-up
        return report("GET /api/v1/ping", n_ping, *drive(n_ping, self.args.concurrency, self.ping,
                                                          client=self.args.client))

    # --- the load ---------------------------------------------------------------------------

    def checkout(self, tag: str):
        def one(client: httpx.Client, i: int) -> bool | int:
            orders = [{"seller": self.sellers[(i * self.per_checkout + k) % self.n_sellers], "amount": 100 + i % 900,
                       "currency": "usd"} for k in range(self.per_checkout)]  # >= 50: Stripe's usd minimum
            body = {"buyer": {"reference": f"b{i}"}, "payment_method": "pm_card_visa", "orders": orders}
            response = client.post(f"{self.stack.web_url}/api/v1/checkouts", json=body,
                                   headers={**self.auth, "Idempotency-Key": f"bench-{tag}-{i}"})
            return response.status_code == 201 or response.status_code
        return one

    def checkouts(self, tag: str, label: str, rate: float | None = None) -> float:
        return report(label, self.n_checkouts, *drive(self.n_checkouts, self.args.concurrency, self.checkout(tag),
                                                      rate=rate, client=self.args.client))

    def half_load(self, max_rate: float) -> None:
        """Checkouts paced at half their max rate, then pings paced at that same rate: the ping's tail is the
        stack's and the client's own (the machine, the client's threads, gunicorn's queue), not the checkout's."""
        self.checkouts("half", f"POST /api/v1/checkouts @ {max_rate / 2:.0f}/s (half)", rate=max_rate / 2)
        report(f"GET /api/v1/ping @ {max_rate / 2:.0f}/s (same pace)", self.n_checkouts,
               *drive(self.n_checkouts, self.args.concurrency, self.ping, rate=max_rate / 2,
                      client=self.args.client))

    def wait_terminal(self, conn, since: float, on_first=None) -> tuple[int, dict]:
        """Poll until no order is left non-terminal (or --timeout); call ``on_first`` when one is picked up."""
        while True:
            left, picked = conn.execute(
                "SELECT count(*) FILTER (WHERE state NOT IN ('succeeded', 'failed')), "
                "count(*) FILTER (WHERE state <> 'not_started') FROM payments_paymentorder").fetchone()
            if on_first and picked:
                on_first()
                on_first = None
            if left == 0 or time.perf_counter() - since > self.args.timeout:
                break
            self.stack.check_alive()
            time.sleep(0.02 if on_first else 0.1)
        states = dict(conn.execute("SELECT state, count(*) FROM payments_paymentorder GROUP BY state").fetchall())
        return left, states

    def snap(self) -> tuple[dict, dict, dict]:
        return self.stack.cpu_snapshot(), self.stack.pg_counters(), switch_snapshot(self.stack)

    @staticmethod
    def show(a: tuple[dict, dict, dict], b: tuple[dict, dict, dict], seconds: float, per: int, unit: str) -> None:
        print(format_cpu(cpu_delta(a[0], b[0]), seconds, per, unit, cpu_delta(a[1], b[1])))
        print(format_switches(a[2], b[2], per, unit))

    def drain(self, conn, cpu_start: tuple[dict, dict, dict], started: float, checkout_rate: float) -> float:
        """Drain mode: the checkouts were queued with the worker stopped; start it and time the drain."""
        print("checkouts, worker stopped:")
        self.show(cpu_start, self.snap(), time.perf_counter() - started, self.n_checkouts, "checkout")
        if self.args.half_load:
            self.half_load(checkout_rate)
        total = conn.execute("SELECT count(*) FROM payments_paymentorder").fetchone()[0]
        marks: dict[str, tuple[float, tuple[dict, dict, dict]]] = {"start": (time.perf_counter(), self.snap())}
        self.stack.start_worker()
        left, states = self.wait_terminal(
            conn, marks["start"][0], lambda: marks.setdefault("first", (time.perf_counter(), self.snap())))
        end = (time.perf_counter(), self.snap())
        settled = states.get("succeeded", 0) + states.get("failed", 0)
        elapsed = end[0] - marks["start"][0]
        first = marks.get("first", marks["start"])
        print(f"drained {total} orders: {settled} terminal in {elapsed:.1f} s after starting the worker "
              f"-> {settled / elapsed:.1f} orders/s ({settled / max(end[0] - first[0], 1e-9):.1f} orders/s "
              f"from the first order picked up, {first[0] - marks['start'][0]:.1f} s after the start); "
              f"states: {states}; not terminal: {left}")
        print("drain, from the worker's start:")
        self.show(marks["start"][1], end[1], elapsed, settled, "settled order")
        print("drain, from the first order picked up (without the worker's boot):")
        self.show(first[1], end[1], end[0] - first[0], settled, "settled order")
        return settled / elapsed

    def end_to_end(self, conn, cpu_start: tuple[dict, dict, dict], started: float, checkout_rate: float) -> float:
        """Normal mode: the worker ran through the checkouts; wait for every order to be decided."""
        left, states = self.wait_terminal(conn, started)
        done = time.perf_counter() - started
        settled = states.get("succeeded", 0) + states.get("failed", 0)
        print(f"all {self.n_checkouts * self.per_checkout} orders terminal {done:.1f} s after the first checkout "
              f"({settled / done:.1f} orders/s end to end); states: {states}; not terminal: {left}")
        print("checkouts + drain, end to end:")
        self.show(cpu_start, self.snap(), done, settled, "settled order")
        if self.args.half_load:
            self.half_load(checkout_rate)
            left, states = self.wait_terminal(conn, time.perf_counter())
            print(f"after the half-load pass: states {states}; not terminal: {left}")
        return settled / done

    def load(self) -> tuple[float, float]:
        """The checkouts at full speed, then the orders decided: (checkouts/s, settled orders/s)."""
        cpu_start = self.snap()
        started = time.perf_counter()
        checkout_rate = self.checkouts("max", "POST /api/v1/checkouts" + (" (worker stopped)" if self.args.drain
                                                                           else ""))
        with self.stack.db() as conn:
            phase = self.drain if self.args.drain else self.end_to_end
            return checkout_rate, phase(conn, cpu_start, started, checkout_rate)


def main() -> None:
    args = parse_args()
    if args.hot_seller and args.orders_per_checkout != 1:
        print("note: --hot-seller sends 1 order per checkout (at most one order per seller per checkout); "
              "compare with a spread run using --orders-per-checkout 1")
    with Stack(web_workers=args.web_workers, worker_pool=args.worker_pool,
               worker_concurrency=args.worker_concurrency, worker_processes=args.worker_processes,
               start_worker=not args.drain, broker_db=args.broker_db, ratelimit_db=args.ratelimit_db,
               db_prefix=args.database) as stack:
        run = Run(args, stack)
        run.baselines()
        run.sellers_create()
        ping_rate = run.ping_rate()
        checkout_rate, settled_rate = run.load()
        print(f"audit_money: {stack.manage('audit_money').splitlines()[-1]}")
        pg = run.pg
        print(f"ratios: checkout / ping = {checkout_rate:.1f} / {ping_rate:.1f} = {checkout_rate / ping_rate:.3f}x; "
              + (f"settled orders/s / pgbench tps = {settled_rate:.1f} / {pg['tps']:.1f} = "
                 f"{settled_rate / pg['tps']:.4f}x" if pg else "no pgbench baseline"))


if __name__ == "__main__":
    main()
