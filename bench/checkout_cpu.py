"""The checkout's own CPU, in-process: N checkouts and N pings through Django's WSGI handler, as gunicorn
calls it, against a real PostgreSQL and Redis (no sandbox, no worker: the checkout only publishes its task).

    .venv/bin/python bench/checkout_cpu.py                      # CPU time per request (time.process_time)
    .venv/bin/python bench/checkout_cpu.py --callgrind          # instructions per request under valgrind
    .venv/bin/python bench/checkout_cpu.py --callgrind --parts  # + the checkout's parts, each on its own

``--callgrind`` runs this script again under ``valgrind --tool=callgrind --instr-atstart=no``; each phase
warms up with ``--warmup`` requests uninstrumented, then ``callgrind_control -i on``, ``--requests``
requests, ``callgrind_control --dump`` (which zeroes the counters): instructions per request are the
dump's total, less an empty phase's (the toggling itself), over the requests. Instruction counts do not
depend on what else the machine runs; ``process_time`` does (caches, frequency), so compare within a run.

Without ``--callgrind`` it also prints the CPU the PostgreSQL backends connected to the database spent per
request (``/proc/<pid>/stat``, 10 ms ticks: use ``--requests`` in the thousands).

``--parts`` measures, the same way, pieces of a checkout alone: the input's validation, the Celery
publish, the API key's authentication, the rate limiter's hit.

The settings are production's (DEBUG off, the connection pool) with this run's secrets; the database
``--database`` (default ``marketplace_checkout_cpu``) is dropped and migrated anew, the broker and the rate
limiter use the Redis databases ``--broker-db`` and ``--ratelimit-db`` (flushed at the end). Figures are
printed, never asserted.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callgrind", action="store_true", help="instructions per request, under valgrind")
    parser.add_argument("--parts", action="store_true", help="also the checkout's parts, one by one")
    parser.add_argument("--requests", type=int, help="measured requests per phase (default 40; 2000 without "
                                                     "--callgrind)")
    parser.add_argument("--warmup", type=int, default=20, help="uninstrumented requests first (default 20)")
    parser.add_argument("--orders", type=int, default=2, help="orders per checkout (default 2)")
    parser.add_argument("--database", default="marketplace_checkout_cpu")
    parser.add_argument("--broker-db", type=int, default=13)
    parser.add_argument("--ratelimit-db", type=int, default=14)
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gc.collect() then gc.freeze() after the warm-up (as gunicorn.conf.py does after boot)")
    parser.add_argument("--gc-threshold", metavar="A,B,C", help="gc.set_threshold(A, B, C) after the warm-up")
    parser.add_argument("--cprofile", metavar="FILE", help="also profile the checkouts with cProfile into FILE "
                                                             "(read it with python -m pstats)")
    parser.add_argument("--layers", action="store_true", help="with --callgrind: instructions per layer of the "
                                                                 "request (bench/_layers.py)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.requests is None:
        args.requests = 40 if args.callgrind else 2000
    return args


def environment(args: argparse.Namespace, *, queue: str = "checkout-cpu") -> dict[str, str]:
    """Production's settings as bench/_stack.py runs gunicorn, on this run's database, Redis dbs and queue."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "bench-" + uuid.uuid4().hex,
        "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "PSP_API_KEY": "sk_test_bench_" + uuid.uuid4().hex,
        "PSP_PUBLISHABLE_KEY": "pk_test_bench_" + uuid.uuid4().hex,
        "PSP_WEBHOOK_SECRET": "whsec_bench_" + uuid.uuid4().hex,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.database}",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{args.broker_db}",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_API_KEY": "100000000/s",
        "RATE_LIMIT_ANONYMOUS": "100000000/s",
        "RATE_LIMIT_WEBHOOK": "100000000/s",
        "RATE_LIMIT_REDIS_URL": f"redis://127.0.0.1:6379/{args.ratelimit_db}",
        "RATE_LIMIT_KEY_PREFIX": queue,
    }


def database_create(args: argparse.Namespace, env: dict[str, str]) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(args.database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(args.database)))
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=env, check=True,
                   capture_output=True)


class Meter:
    """Counts a phase: instructions under callgrind (toggled from outside), else CPU seconds."""

    def __init__(self, callgrind: bool) -> None:
        self.callgrind = callgrind
        self.dumps = 0
        self.walls: dict[str, tuple[float, float]] = {}  # label: wall-clock p50, p99 (ms), without callgrind
        self.backends: dict[str, float] = {}  # label: PostgreSQL backends' CPU microseconds, without callgrind
        self.out = os.environ.get("CHECKOUT_CPU_CALLGRIND_OUT", "")

    def _control(self, *flags: str) -> None:
        subprocess.run(["callgrind_control", *flags, str(os.getpid())], check=True, capture_output=True)

    def measure(self, label: str, fn, n: int) -> float:
        """``fn(i)`` for i in range(n): its whole cost (instructions, or CPU microseconds)."""
        if not self.callgrind:
            backends_before = backends_cpu()
            started, walls = time.process_time(), []
            for i in range(n):
                sent = time.perf_counter()
                fn(i)
                walls.append(time.perf_counter() - sent)
            spent = (time.process_time() - started) * 1e6
            self.backends[label] = backends_cpu(since=backends_before)
            walls.sort()
            self.walls[label] = (walls[n // 2] * 1e3, walls[min(n - 1, round(n * 0.99))] * 1e3)
            return spent
        self._control("-i", "on")
        for i in range(n):
            fn(i)
        self._control("--dump=" + label)
        self._control("-i", "off")
        self.dumps += 1
        return self._total(self.dumps)

    def _total(self, number: int) -> float:
        for line in Path(f"{self.out}.{number}").read_text().splitlines():
            if line.startswith("totals:"):  # "summary:" can come out wrapped below zero (threads)
                return float(line.split()[1])
        raise SystemExit(f"no totals in {self.out}.{number}")


def backends_cpu(since: dict[int, float] | None = None):
    """CPU microseconds of the PostgreSQL backends connected to our database, per pid (from /proc); with
    ``since``, their total since then (backends that exited meanwhile are not counted: the pool keeps them)."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"],
                         dbname=db["NAME"], autocommit=True) as conn:
        pids = [row[0] for row in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                                               " AND pid <> pg_backend_pid()")]
    ticks = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[pid] = (int(fields[11]) + int(fields[12])) * 1e6 / os.sysconf("SC_CLK_TCK")
    if since is None:
        return ticks
    return sum(value - since.get(pid, 0.0) for pid, value in ticks.items())


class Wsgi:
    """Requests through the WSGI handler gunicorn's workers call (django.core.wsgi), its middleware included."""

    def __init__(self, key: str) -> None:
        from django.core.wsgi import get_wsgi_application

        self.app = get_wsgi_application()
        self.auth = f"Bearer {key}"

    def __call__(self, method: str, path: str, body: bytes = b"", **headers: str) -> tuple[str, bytes]:
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000", "HTTP_AUTHORIZATION": self.auth,
            "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
            "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        if body:
            environ.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(body)))
        environ.update({"HTTP_" + name.upper(): value for name, value in headers.items()})
        status: list[str] = []
        response = self.app(environ, lambda s, h, exc_info=None: status.append(s))
        try:
            content = b"".join(response)
        finally:
            getattr(response, "close", lambda: None)()
        return status[0], content


def checkout_body(sellers: list[str], i: int, per: int) -> bytes:
    orders = [{"seller": sellers[(i * per + k) % len(sellers)], "amount": 100 + i % 900, "currency": "usd"}
              for k in range(per)]
    return json.dumps({"buyer": {"reference": f"b{i}"}, "payment_method": "pm_card_visa", "orders": orders}).encode()


def requests_phases(args: argparse.Namespace, meter: Meter, wsgi: Wsgi, sellers: list[str]) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]

    def checkout(tag: str):
        def one(i: int) -> None:
            status, content = wsgi("POST", "/api/v1/checkouts", checkout_body(sellers, i, args.orders),
                                   idempotency_key=f"{run}-{tag}-{i}")
            if not status.startswith("201"):
                raise SystemExit(f"checkout answered {status}: {content[:500]!r}")
        return one

    def ping(i: int) -> None:
        status, content = wsgi("GET", "/api/v1/ping")
        if not status.startswith("200"):
            raise SystemExit(f"ping answered {status}: {content[:500]!r}")

    for i in range(args.warmup):
        checkout("warm")(i)
        ping(i)
    gc_setup(args)
    empty = meter.measure("empty", lambda i: None, 1)
    n = args.requests
    with GcPauses() as pauses:
        figures = {"checkout": (meter.measure("checkout", checkout("run"), n) - empty) / n}
    figures["gc"] = pauses.summary(n)
    figures["ping"] = (meter.measure("ping", ping, n) - empty) / n
    figures["walls"] = meter.walls
    figures["dumps"] = {"checkout": f"{meter.out}.2", "ping": f"{meter.out}.3"}
    figures["backends"] = {name: value / n for name, value in meter.backends.items() if name in ("checkout", "ping")}
    return figures


def gc_setup(args: argparse.Namespace) -> None:
    import gc

    if args.gc_threshold:
        gc.set_threshold(*(int(x) for x in args.gc_threshold.split(",")))
    if args.gc_freeze:
        gc.collect()
        gc.freeze()


class GcPauses:
    """Python's garbage collections during a phase: how many per generation, their total and longest pause
    (wall clock: under callgrind, ~50x slow), and how many objects a full collection would walk."""

    def __enter__(self):
        import gc

        self.gc, self.started, self.pauses = gc, {}, {0: [], 1: [], 2: []}
        gc.callbacks.append(self._callback)
        return self

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self.started)

    def __exit__(self, *exc) -> None:
        self.gc.callbacks.remove(self._callback)

    def summary(self, n: int) -> dict:
        return {"tracked": len(self.gc.get_objects()), "frozen": self.gc.get_freeze_count(),
                "threshold": self.gc.get_threshold(),
                **{f"gen{g}": [len(p), sum(p) * 1e3 / n, max(p, default=0) * 1e3] for g, p in self.pauses.items()}}


def parts_phases(args: argparse.Namespace, meter: Meter, client, key: str, sellers: list[str]) -> dict[str, float]:
    """Pieces of a checkout, each alone: what removing or cheapening it can buy at most."""
    from django.conf import settings
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from core.throttling import RateLimitedApiKeyAuthentication, hit
    from payments.serializers import CheckoutInput
    from payments.services.enqueue import task_publish
    from payments.tasks import payment_event_execute_task

    bodies = [json.loads(checkout_body(sellers, i, args.orders)) for i in range(args.requests + args.warmup)]
    factory = APIRequestFactory()
    key_request = factory.get("/api/v1/ping", HTTP_AUTHORIZATION=f"Bearer {key}")

    def validate(i: int) -> None:
        serializer = CheckoutInput(data=bodies[i])
        serializer.is_valid(raise_exception=True)

    def publish(i: int) -> None:
        task_publish(payment_event_execute_task, payment_event_id=f"pe_bench{i}")

    def authenticate(i: int) -> None:
        RateLimitedApiKeyAuthentication().authenticate(Request(key_request))

    def rate_limit(i: int) -> None:
        hit("key", str(client.pk), settings.RATE_LIMIT_API_KEY)

    figures = {}
    empty = meter.measure("empty-parts", lambda i: None, 1)
    for name, fn in (("validate", validate), ("publish", publish), ("authenticate", authenticate),
                     ("rate_limit", rate_limit)):
        for i in range(args.warmup):
            fn(i)
        figures[name] = (meter.measure(name, fn, args.requests) - empty) / args.requests
    return figures


def profile(args: argparse.Namespace, wsgi: Wsgi, sellers: list[str]) -> None:
    import cProfile

    tag = uuid.uuid4().hex[:8]
    profiler = cProfile.Profile(time.process_time)  # CPU, not the waits on PostgreSQL and Redis
    for i in range(args.requests):
        body = checkout_body(sellers, i, args.orders)
        profiler.runcall(wsgi, "POST", "/api/v1/checkouts", body, idempotency_key=f"{tag}-{i}")
    profiler.dump_stats(args.cprofile)


def inner(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from core.services import api_client_create
    from payments.models import Seller

    if args.layers:
        from bench._checkout_layers import install

        labels = install()
    client, key = api_client_create(name="checkout-cpu")
    sellers = [Seller.objects.create(client=client, name=f"s{i}").id for i in range(50)]
    meter = Meter(args.callgrind)
    figures = requests_phases(args, meter, Wsgi(key), sellers)
    figures["layers"] = labels if args.layers else []
    if args.parts:
        figures.update(parts_phases(args, meter, client, key, sellers))
    if args.cprofile:
        profile(args, Wsgi(key), sellers)
    print(json.dumps(figures))


def report(args: argparse.Namespace, figures: dict[str, float]) -> None:
    unit, scale = ("M instructions", 1e6) if args.callgrind else ("ms CPU", 1e3)
    print(f"per request ({args.requests} measured after {args.warmup} warm-up; {args.orders} orders per checkout; "
          f"load {Path('/proc/loadavg').read_text().split()[0]}):")
    for name in ("checkout", "ping"):
        print(f"  {name:<12} {figures[name] / scale:8.2f} {unit}")
    print(f"  checkout / ping cost = {figures['checkout'] / figures['ping']:.2f} (in this process only: through "
          "gunicorn both also pay the HTTP parsing, and PostgreSQL and Redis work on the same cores)")
    for name, (p50, p99) in figures["walls"].items():
        if name in ("checkout", "ping"):
            print(f"  {name:<12} wall clock, one at a time: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    for name, value in figures.get("backends", {}).items():
        print(f"  {name:<12} PostgreSQL (our database's backends) {value / 1e3:.2f} ms CPU")
    gc = figures["gc"]
    print(f"  gc during the checkouts (threshold {gc['threshold']}, {gc['tracked']} objects tracked, "
          f"{gc['frozen']} frozen): " + "; ".join(
              f"gen{g} {gc[f'gen{g}'][0]} collections, {gc[f'gen{g}'][1]:.2f} ms per checkout, longest "
              f"{gc[f'gen{g}'][2]:.1f} ms" for g in range(3)))
    for name in ("validate", "publish", "authenticate", "rate_limit"):
        if name in figures:
            share = figures[name] / figures["checkout"]
            print(f"  part {name:<12} {figures[name] / scale:8.2f} {unit}  ({share:.0%} of a checkout)")


def inner_run(script: str, env: dict[str, str], *, callgrind: bool, name: str) -> dict:
    """``script --inner`` with this run's arguments, in a process of its own (under callgrind with ``callgrind``):
    the figures it prints as JSON on its last line."""
    argv = [sys.executable, script, "--inner", *sys.argv[1:]]
    if callgrind:
        out = f"/tmp/{name}.{uuid.uuid4().hex[:8]}.callgrind"
        env["CHECKOUT_CPU_CALLGRIND_OUT"] = out
        argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", *argv]
    try:
        done = subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"the measured process failed:\n{exc.stdout[-3000:]}\n{exc.stderr[-3000:]}") from None
    return json.loads(done.stdout.strip().splitlines()[-1])

def main() -> None:
    args = parse_args()
    env = environment(args)
    if args.inner:
        inner(args)
        return
    database_create(args, env)
    figures = inner_run(__file__, env, callgrind=args.callgrind, name="checkout_cpu")
    report(args, figures)
    if args.layers:
        from bench._checkout_layers import report as layers_report

        layers_report(figures["dumps"], figures["layers"], args.requests)
    import redis

    for db in (args.broker_db, args.ratelimit_db):
        redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()


if __name__ == "__main__":
    main()
