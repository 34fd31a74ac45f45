"""Checkout throughput and latency against gunicorn (DEBUG off), with Celery draining the orders.

    .venv/bin/python bench/checkout.py --checkouts 2000 --concurrency 16

Prints, for the checkout endpoint and for a trivial authenticated DRF endpoint (``/api/v1/ping``)
measured in the same run: requests per second, p50 and p99 latency; then the time until every
payment order is terminal. Everything runs on loopback against a fresh database.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import Stack  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def drive(n: int, concurrency: int, request) -> tuple[float, list[float], int]:
    """Send ``n`` requests from ``concurrency`` threads; return (elapsed, latencies, errors)."""
    local = threading.local()
    latencies: list[float] = []
    errors = 0

    def one(i: int) -> None:
        nonlocal errors
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=60)
        started = time.perf_counter()
        ok = request(local.client, i)
        latencies.append(time.perf_counter() - started)
        if not ok:
            errors += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(n)))
    return time.perf_counter() - started, latencies, errors


def report(label: str, n: int, elapsed: float, latencies: list[float], errors: int) -> None:
    print(f"{label:<28} {n:>6} req  {n / elapsed:>8.1f} req/s  p50 {statistics.median(latencies) * 1000:>7.1f} ms  "
          f"p99 {percentile(latencies, 0.99) * 1000:>7.1f} ms  errors {errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkouts", type=int, default=1000)
    parser.add_argument("--orders-per-checkout", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--worker-concurrency", type=int, default=4)
    args = parser.parse_args()

    with Stack(web_workers=args.web_workers, worker_concurrency=args.worker_concurrency) as stack:
        key = stack.manage("create_api_key", "bench")
        auth = {"Authorization": f"Bearer {key}"}
        sellers = [httpx.post(f"{stack.web_url}/api/v1/sellers", json={"name": f"s{i}"}, headers=auth).json()["id"]
                   for i in range(max(args.orders_per_checkout, 10))]
        print(f"stack: gunicorn x{args.web_workers} (DEBUG off), celery worker -c {args.worker_concurrency}, "
              f"PSP sandbox; client threads {args.concurrency}; {args.orders_per_checkout} orders per checkout")

        def ping(client: httpx.Client, i: int) -> bool:
            return client.get(f"{stack.web_url}/api/v1/ping", headers=auth).status_code == 200

        drive(min(200, args.checkouts), args.concurrency, ping)  # warm-up
        report("GET /api/v1/ping", args.checkouts, *drive(args.checkouts, args.concurrency, ping))

        def checkout(client: httpx.Client, i: int) -> bool:
            orders = [{"seller": sellers[(i + k) % len(sellers)], "amount": 100 + i % 900, "currency": "usd"}
                      for k in range(args.orders_per_checkout)]
            body = {"buyer": {"reference": f"b{i}"}, "payment_method": "pm_card_visa", "orders": orders}
            response = client.post(f"{stack.web_url}/api/v1/checkouts", json=body,
                                   headers={**auth, "Idempotency-Key": f"bench-{i}"})
            return response.status_code == 201

        started = time.perf_counter()
        elapsed, latencies, errors = drive(args.checkouts, args.concurrency, checkout)
        report("POST /api/v1/checkouts", args.checkouts, elapsed, latencies, errors)

        total = args.checkouts * args.orders_per_checkout
        with stack.db() as conn:
            while True:
                left = conn.execute("SELECT count(*) FROM payments_paymentorder "
                                    "WHERE state NOT IN ('succeeded', 'failed')").fetchone()[0]
                if left == 0 or time.perf_counter() - started > 1800:
                    break
                time.sleep(0.2)
            done = time.perf_counter() - started
            states = dict(conn.execute("SELECT state, count(*) FROM payments_paymentorder GROUP BY state").fetchall())
        print(f"all {total} orders terminal {done:.1f} s after the first checkout "
              f"({total / done:.1f} orders/s end to end); states: {states}; not terminal: {left}")
        audit = stack.manage("audit_money").splitlines()[-1]
        print(f"audit_money: {audit}")


if __name__ == "__main__":
    main()
