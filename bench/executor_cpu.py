"""The Celery worker's own CPU per settled order, in-process: N checkouts of 2 orders (each a new buyer)
executed by ``payment_event_execute_task`` against a real PSP sandbox process and PostgreSQL.

    .venv/bin/python bench/executor_cpu.py                  # CPU ms per order (time.process_time)
    .venv/bin/python bench/executor_cpu.py --callgrind      # instructions per order under valgrind
    .venv/bin/python bench/executor_cpu.py --worker         # a real worker process draining N queued events
    .venv/bin/python bench/executor_cpu.py --worker --callgrind  # the same worker under callgrind: instructions
    .venv/bin/python bench/executor_cpu.py --callgrind --layers  # + instructions per layer (bench/_executor_layers.py)

In-process, each event's task runs as a worker's pool thread runs it: Celery's tracer (``build_tracer``, not
eager), so ``task_prerun``/``task_postrun`` and the Django fixup's handlers (installed as a worker installs
them) are counted, around the task itself. What a worker also does per task (the message's decoding, the
``Request``, its acknowledgement, events) is not: ``--worker`` counts it, with ``celery worker --pool threads``
as the Procfile runs it (``--concurrency``, default 100), started on an empty queue, then N events
published at once; its CPU (``/proc/<pid>/stat``) from the first publish until every order is decided.

``--callgrind`` runs the in-process phase under ``valgrind --tool=callgrind --instr-atstart=no``:
``--warmup`` events uninstrumented, then the N measured (``callgrind_control``, as ``bench/checkout_cpu.py``).
Instructions do not depend on the machine's load; CPU seconds do (compare within a pair, give the load).

Production's settings (the connection pool, DEBUG off) on a database of its own (``--database``, dropped and
migrated anew), a queue of its own on Redis db ``--broker-db`` (its keys deleted at the end). Figures are
printed, not asserted.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import free_port, wait_http  # noqa: E402
from checkout_cpu import Meter, database_create, inner_run  # noqa: E402
from checkout_cpu import environment as checkout_environment  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callgrind", action="store_true", help="instructions per order, under valgrind")
    parser.add_argument("--worker", action="store_true", help="a real worker draining the events instead")
    parser.add_argument("--events", type=int, help="measured events, 2 orders each (default 20 with --callgrind, "
                                                   "1000 with --worker, else 500)")
    parser.add_argument("--warmup", type=int, default=25,
                        help="events executed first, not measured (default 25: every one of the 50 sellers paid "
                             "once, so that no measured order opens a seller's ledger account and wallet)")
    parser.add_argument("--concurrency", type=int, default=100, help="--worker's threads (default 100)")
    parser.add_argument("--worker-option", action="append", default=[], metavar="OPTION",
                        help="another option for --worker's celery worker (repeat it), e.g. --worker-option=-E")
    parser.add_argument("--pace", type=float, default=0, metavar="N",
                        help="--worker: publish the measured events at N a second, as checkouts arrive end to end "
                             "(default 0: all at once, a queue drained)")
    parser.add_argument("--psp-latency-ms", type=int, default=0,
                        help="--worker: the sandbox answers each measured call in N ms (the warm-up at 0)")
    parser.add_argument("--database", default="marketplace_worker_bench")
    parser.add_argument("--broker-db", type=int, default=7)
    parser.add_argument("--ratelimit-db", type=int, default=8)
    parser.add_argument("--layers", action="store_true", help="with --callgrind (in-process): instructions per "
                                                               "layer of an order (bench/_executor_layers.py)")
    parser.add_argument("--gc-freeze", action="store_true", help="in-process: gc.collect() then gc.freeze() after "
                                                                  "the warm-up (as the worker does once ready)")
    parser.add_argument("--cprofile", metavar="FILE", help="profile the measured events with cProfile into FILE")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--psp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.events is None:
        args.events = 20 if args.callgrind else 1000 if args.worker else 500
    return args


def environment(args: argparse.Namespace, psp_url: str) -> dict[str, str]:
    """Production's settings on this run's database, sandbox and a queue of its own (runs may overlap)."""
    return {**checkout_environment(args, queue=f"executor-cpu-{uuid.uuid4().hex[:8]}"), "PSP_API_BASE": psp_url}


@functools.cache
def _client_and_sellers():
    """The run's API client and its 50 sellers, the same for the warm-up and the measured events (a seller's
    first order opens its ledger account and wallet: the warm-up pays for those)."""
    from core.services import api_client_create
    from payments.models import Seller

    client, _key = api_client_create(name=f"executor-cpu-{uuid.uuid4().hex[:8]}")
    return client, [Seller.objects.create(client=client, name=f"s{i}").id for i in range(50)]


def events_create(n: int, tag: str) -> list[str]:
    """``n`` checkouts of two orders, each of a new buyer, published on commit as the API does it."""
    from django.db import transaction

    from payments.services.checkout import OrderSpec, payment_event_create

    client, sellers = _client_and_sellers()
    ids = []
    for i in range(n):
        orders = [OrderSpec(seller_id=sellers[(2 * i + k) % len(sellers)], amount=100 + i % 900, currency="usd")
                  for k in range(2)]
        with transaction.atomic():
            ids.append(payment_event_create(client=client, buyer_reference=f"{tag}-b{i}", buyer_email="", orders=orders,
                                            payment_method="pm_card_visa", idempotency_key=f"{tag}-{i}").id)
    return ids


def inner(args: argparse.Namespace) -> None:
    import django

    django.setup()
    import redis
    from celery.app.trace import build_tracer
    from celery.fixups.django import DjangoWorkerFixup
    from django.conf import settings

    from config.celery_app import app
    from payments.tasks import payment_event_execute_task as task

    labels = []
    if args.layers:
        from bench._executor_layers import install

        labels = install()
    # As the worker does: connections and caches closed around each task. Kept referenced: the signals hold
    # their receivers (its bound methods) weakly, and an unreferenced fixup's handlers would never run.
    fixup = DjangoWorkerFixup(app).install()  # noqa: F841  (referenced until the run ends)
    tag = uuid.uuid4().hex[:8]
    ids = events_create(args.warmup + args.events, tag)
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)  # run here instead
    tracer = build_tracer(task.name, task, app=app, eager=False)

    def run(i: int) -> None:
        request = {"id": uuid.uuid4().hex, "delivery_info": {"redelivered": False}, "hostname": "bench"}
        retval, info, *_ = tracer(request["id"], (), {"payment_event_id": ids[i]}, request)
        if info is not None and info.state != "SUCCESS":
            raise SystemExit(f"task {info.state}: {info.retval!r}")

    for i in range(args.warmup):
        run(i)
    if args.gc_freeze:
        import gc

        gc.collect()
        gc.freeze()
    meter = Meter(args.callgrind)
    empty = meter.measure("empty", lambda i: None, 1)
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
    spent = meter.measure("events", lambda i: run(args.warmup + i), args.events) - empty
    if args.cprofile:
        profiler.disable()
        profiler.dump_stats(args.cprofile)
    orders = 2 * args.events
    print(json.dumps({"per_order": spent / orders, "settled": settled(ids[args.warmup:]),
                      "backends": meter.backends.get("events", 0.0) / orders, "orders": orders,
                      "layers": labels, "dump": f"{meter.out}.{meter.dumps}"}))


def settled(event_ids: list[str]) -> int:
    from payments.models import PaymentOrder

    return PaymentOrder.objects.filter(payment_event_id__in=event_ids, state="succeeded").count()


def process_cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of the process's live threads so far."""
    counts = [0, 0]
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                counts[0] += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                counts[1] += int(line.split()[1])
    return counts[0], counts[1]


def psp_latency(psp_url: str, ms: int) -> None:
    """Set the sandbox's ``latency_ms`` to ``[ms, ms]``."""
    import urllib.request

    request = urllib.request.Request(f"{psp_url}/_sandbox/config", data=json.dumps({"latency_ms": [ms, ms]}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(request, timeout=30).read()


def worker_phase(args: argparse.Namespace, env: dict[str, str]) -> dict:
    """A real worker process: booted on an empty queue, then N events published; its CPU until all are decided."""
    import django

    os.environ.update(env)
    django.setup()
    from payments.models import PaymentOrder

    log = open(Path(tempfile.gettempdir()) / f"executor_cpu_worker.{os.getpid()}.log", "w")  # noqa: SIM115
    argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", env["CELERY_TASK_DEFAULT_QUEUE"],
            "--pool", "threads",
            "-c", str(args.concurrency), "-n", f"executor-cpu-{os.getpid()}@%h", "--without-gossip",
            "--without-mingle", "-l", "warning", *args.worker_option]
    out = f"/tmp/executor_cpu_worker.{uuid.uuid4().hex[:8]}.callgrind"
    if args.callgrind:
        argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", *argv]
    worker = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        events_create(args.warmup, "warm")
        deadline = time.monotonic() + (1200 if args.callgrind else 120)
        while PaymentOrder.objects.exclude(state="succeeded").exists():
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"the worker did not drain the warm-up (log: {log.name})")
            time.sleep(0.2)
        time.sleep(1.0)
        psp_latency(env["PSP_API_BASE"], args.psp_latency_ms)
        # Published with the worker running, as the API does; the publishing is this process's CPU, not the worker's.
        if args.callgrind:
            subprocess.run(["callgrind_control", "-i", "on", str(worker.pid)], check=True, capture_output=True)
        cpu_before, started, switched = process_cpu_ms(worker.pid), time.monotonic(), switches(worker.pid)
        tag = uuid.uuid4().hex[:8]
        ids = [] if args.pace else events_create(args.events, tag)
        for i in range(args.events if args.pace else 0):  # one at a time at an idle consumer, as end to end
            time.sleep(max(0.0, started + i / args.pace - time.monotonic()))
            ids += events_create(1, f"{tag}-{i}")
        while PaymentOrder.objects.filter(payment_event_id__in=ids).exclude(state="succeeded").exists():
            if time.monotonic() - started > (3600 if args.callgrind else 600) or worker.poll() is not None:
                raise SystemExit(f"the worker did not drain the events (log: {log.name})")
            time.sleep(0.05)
        seconds = time.monotonic() - started
        spent = (process_cpu_ms(worker.pid) - cpu_before) * 1000  # microseconds
        switched = [b - a for a, b in zip(switched, switches(worker.pid), strict=True)]
        if args.callgrind:  # instructions instead of CPU microseconds
            subprocess.run(["callgrind_control", "--dump=events", str(worker.pid)], check=True, capture_output=True)
            spent = _callgrind_total(out)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    orders = 2 * args.events
    return {"per_order": spent / orders, "settled": settled(ids), "orders": orders, "seconds": seconds,
            "switches": [n / orders for n in switched]}


def _callgrind_total(out: str) -> float:
    """The instructions of the worker's first dump (all its threads: ``totals:``, as checkout_cpu reads it)."""
    for line in Path(f"{out}.1").read_text().splitlines():
        if line.startswith("totals:"):
            return float(line.split()[1])
    raise SystemExit(f"no totals in {out}.1")


def sandbox_start(port: int, directory: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "psp_sandbox", "--port", str(port), "--db",
                             str(Path(directory) / "psp.sqlite3")], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/_sandbox/health")
    return proc


def main() -> None:
    args = parse_args()
    if args.inner:
        inner(args)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # the sandbox and worker stopped on the way out
    port = free_port()
    env = environment(args, f"http://127.0.0.1:{port}")
    database_create(args, env)
    with tempfile.TemporaryDirectory() as directory:
        sandbox = sandbox_start(port, directory)
        try:
            load = Path("/proc/loadavg").read_text().split()[0]
            if args.worker:
                figures = worker_phase(args, env)
            else:
                figures = measured_process(args, env)
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=30)
    report(args, figures, load)
    if args.layers and args.callgrind and not args.worker:
        from bench._executor_layers import report as layers_report

        layers_report(figures["dump"], figures["layers"], figures["orders"])
    import psycopg
    import redis
    from psycopg import sql

    queue = env["CELERY_TASK_DEFAULT_QUEUE"]  # this run's keys only: its queue and binding, its rate-limit prefix
    for db in (args.broker_db, args.ratelimit_db):
        client = redis.Redis(host="127.0.0.1", port=6379, db=db)
        for key in client.scan_iter(match=f"*{queue}*"):
            client.delete(key)
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(args.database)))


def measured_process(args: argparse.Namespace, env: dict[str, str]) -> dict:
    return inner_run(__file__, env, callgrind=args.callgrind, name="executor_cpu")


def report(args: argparse.Namespace, figures: dict, load: str) -> None:
    if args.worker:
        figure = (f"{figures['per_order'] / 1e6:.3f} M instructions" if args.callgrind
                  else f"{figures['per_order'] / 1e3:.3f} ms CPU")
        print(f"worker (threads x{args.concurrency}, one process, PSP latency {args.psp_latency_ms} ms) draining "
              f"{figures['orders']} orders in {figures['seconds']:.1f} s: {figure} per order, {figures['settled']} "
              f"settled; context switches per order {figures['switches'][0]:.1f} voluntary, "
              f"{figures['switches'][1]:.1f} involuntary "
              f"(load {load} at start, {Path('/proc/loadavg').read_text().split()[0]} at end)")
        return
    unit, scale = ("M instructions", 1e6) if args.callgrind else ("ms CPU", 1e3)
    print(f"in-process executor, {figures['orders']} orders after {2 * args.warmup} warm-up: "
          f"{figures['per_order'] / scale:.3f} {unit} per order, {figures['settled']} settled"
          + ("" if args.callgrind else f"; PostgreSQL backends {figures['backends'] / 1e3:.3f} ms")
          + f" (load {load} at start, {Path('/proc/loadavg').read_text().split()[0]} at end)")


if __name__ == "__main__":
    main()
