"""Start a production-style stack of our own for a benchmark: its own database, ports and queue.

Used by ``bench/checkout.py`` and ``bench/chaos.py``; not run directly.

``Stack(...)`` starts the PSP sandbox, gunicorn (DEBUG off) and a Celery worker on a fresh database
``marketplace_bench_*``, free loopback ports and a Redis queue of its own, and removes them on exit.
The worker's pool and concurrency are, in this order: the ``worker_pool`` / ``worker_concurrency``
arguments, the environment variables ``CELERY_WORKER_POOL`` / ``CELERY_WORKER_CONCURRENCY``, the
``worker:`` line of the ``Procfile`` as it reads when the stack starts (its other worker options,
e.g. ``--prefetch-multiplier``, are passed through too), Celery's defaults (prefork, one per core).
``start_worker=False`` starts everything but the worker; ``stack.start_worker()`` starts it later.

CPU accounting (``stack.cpu_snapshot()``, ``cpu_delta``, ``format_cpu``): machine CPU from
``/proc/stat`` (every state but idle and iowait, all cores, in ms), and each process's own CPU
from ``/proc/<pid>/stat`` (user + system, plus its reaped children's): the stack's process groups
(gunicorn master + workers, Celery worker + its pool children, sandbox), every ``postgres`` and
``redis-server`` process on the machine (found by name), and this benchmark client itself.
"postgres: our db" is the live backends connected to our database (by their process title); "postgres"
is the rest of the server: background processes, backends that have exited (ours included: a
connection opened per task shows up here), other databases'. ``pg_counters()`` reads
pg_stat_database: sessions opened on our database, commits on the others (a sign that someone
else's load is in the figures).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
POOLS = ("prefork", "threads", "gevent", "eventlet", "solo")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout}s")


# -- the worker's settings, as the Procfile has them ----------------------------------------------

_ENV_REF = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")
# Options the stack sets itself (queue, name, log level...): dropped from the Procfile's line.
_OWN_OPTIONS_WITH_VALUE = {"-A", "--app", "-l", "--loglevel", "-Q", "--queues", "-n", "--hostname", "-s",
                           "--schedule", "-f", "--logfile", "--pidfile"}
_OWN_FLAGS = {"-B", "--beat", "-D", "--detach", "--without-gossip", "--without-mingle"}


def _expand(text: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(3)
        return os.environ.get(name) or (match.group(2) or "")
    return _ENV_REF.sub(value, text)


def procfile_worker() -> tuple[str | None, int | None, list[str]]:
    """(pool, concurrency, other worker options) from the Procfile's ``worker:`` line, read now."""
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("worker:")]
    if not lines:
        return None, None, []
    argv = shlex.split(_expand(lines[0].split(":", 1)[1]))
    argv = argv[argv.index("worker") + 1:] if "worker" in argv else []
    pool = concurrency = None
    extra: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, inline = arg.partition("=")
        if name in ("-P", "--pool", "-c", "--concurrency") or re.fullmatch(r"-[Pc]\S+", arg):
            if eq:
                val = inline
            elif len(arg) > 2 and not arg.startswith("--"):
                name, val = arg[:2], arg[2:]
            else:
                i += 1
                val = argv[i] if i < len(argv) else ""
            if name in ("-P", "--pool"):
                pool = val
            else:
                concurrency = int(val)
        elif name in _OWN_OPTIONS_WITH_VALUE:
            i += 0 if eq else 1
        elif (len(arg) > 2 and arg[:2] in _OWN_OPTIONS_WITH_VALUE) or arg in _OWN_FLAGS:
            pass
        else:
            extra.append(arg)
        i += 1
    return pool, concurrency, extra


def worker_settings(pool: str | None = None, concurrency: int | None = None) -> tuple[str, int, list[str], str]:
    """(pool, concurrency, extra options, where each came from) for the bench's worker."""
    file_pool, file_conc, extra = procfile_worker()
    sources = []
    if pool:
        sources.append("pool: argument")
    elif os.environ.get("CELERY_WORKER_POOL"):
        pool = os.environ["CELERY_WORKER_POOL"]
        sources.append("pool: $CELERY_WORKER_POOL")
    elif file_pool:
        pool = file_pool
        sources.append("pool: Procfile")
    else:
        pool = "prefork"
        sources.append("pool: Celery's default")
    if concurrency:
        sources.append("concurrency: argument")
    elif os.environ.get("CELERY_WORKER_CONCURRENCY"):
        concurrency = int(os.environ["CELERY_WORKER_CONCURRENCY"])
        sources.append("concurrency: $CELERY_WORKER_CONCURRENCY")
    elif file_conc:
        concurrency = file_conc
        sources.append("concurrency: Procfile")
    else:
        concurrency = os.cpu_count() or 1
        sources.append("concurrency: Celery's default")
    if pool not in POOLS:
        raise SystemExit(f"unknown worker pool {pool!r}: one of {', '.join(POOLS)}")
    return pool, concurrency, extra, ", ".join(sources)


# -- CPU accounting -------------------------------------------------------------------------------

def machine_cpu_ms() -> float:
    """Busy CPU of the whole machine since boot, all cores: every /proc/stat state but idle and iowait."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) * 1000 / CLK_TCK  # guest time is inside user


def _processes():
    """(pid, comm, process group, own ticks, reaped children's ticks) of every process we can read."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                data = f.read()
        except OSError:
            continue
        close = data.rindex(")")
        rest = data[close + 2:].split()  # rest[0] is field 3 (state)
        yield (int(entry.name), data[data.index("(") + 1:close], int(rest[2]),
               int(rest[11]) + int(rest[12]), int(rest[13]) + int(rest[14]))


def _cmdline_has(pid: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return needle in f.read()
    except OSError:
        return False


def _own_cpu_ms() -> float:
    times = os.times()
    return (times.user + times.system) * 1000


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {key: after[key] - before.get(key, 0.0) for key in after}


def format_cpu(delta: dict[str, float], seconds: float, per: int, unit: str, pg: dict[str, float] | None = None) -> str:
    """Machine CPU (and how busy the cores were), its split per process, per ``unit``; PostgreSQL's counters."""
    machine = delta["machine"]
    parts = {k: v for k, v in delta.items() if k != "machine"}
    other = machine - sum(parts.values())
    per = max(per, 1)
    busy = machine / (seconds * 1000 * (os.cpu_count() or 1)) if seconds > 0 else 0.0
    others = sum(max(0.0, v) for k, v in (pg or {}).items() if k.startswith("commits:"))  # dropped ones: absent
    split = " + ".join(f"{name} {ms / per:.2f}" for name, ms in sorted(parts.items(), key=lambda kv: -kv[1]))
    return (f"  machine CPU {machine:,.0f} ms over {seconds:.1f} s ({busy:.0%} of {os.cpu_count()} cores) = "
            f"{machine / per:.2f} ms per {unit}\n"
            f"  per {unit}, ms: {split} + other (not ours: kernel threads, other users) {other / per:.2f}"
            + (f"\n  postgres: {pg['sessions']:.0f} sessions opened on our database ({pg['sessions'] / per:.2f} per "
               f"{unit}); other databases: {others:.0f} commits"
               + (" (someone else's load is in these figures)" if others > 10 else "") if pg else ""))


# -- the stack --------------------------------------------------------------------------------------

class Stack:
    """PSP sandbox + gunicorn (DEBUG off) + Celery worker on a fresh database ``marketplace_bench_*``."""

    def __init__(self, *, web_workers: int = 4, worker_pool: str | None = None, worker_concurrency: int | None = None,
                 worker_processes: int | None = None, start_worker: bool = True, beat: bool = False,
                 extra_env: dict[str, str] | None = None, broker_db: int = 6, ratelimit_db: int = 7,
                 db_prefix: str | None = None):
        self.name = f"bench_{uuid.uuid4().hex[:8]}"
        # The database's prefix: the argument, else $BENCH_DATABASE_PREFIX (bench/chaos.py, its test), else marketplace.
        self.db_name = f"{db_prefix or os.environ.get('BENCH_DATABASE_PREFIX') or 'marketplace'}_{self.name}"
        self.web_port, self.psp_port = free_port(), free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.psp_url = f"http://127.0.0.1:{self.psp_port}"
        self.web_workers, self.beat, self.autostart_worker = web_workers, beat, start_worker
        self.worker_pool, self.worker_concurrency, self.worker_extra, self.worker_source = worker_settings(
            worker_pool, worker_concurrency)
        # One Python process holds one core at most (the GIL): as many worker processes as cores, as
        # `make run` and scripts/stack.sh start them ($WORKER_PROCESSES).
        self.worker_processes = worker_processes or int(os.environ.get("WORKER_PROCESSES") or os.cpu_count() or 1)
        self.procs: dict[str, subprocess.Popen] = {}
        self.logdir = ROOT / "var" / "bench" / self.name
        webhook_secret = "whsec_bench_" + uuid.uuid4().hex
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "DJANGO_SECURE_COOKIES": "false",
            "DJANGO_SECURE_SSL_REDIRECT": "false",  # plain HTTP on loopback: no TLS proxy in front
            # Secrets of this run's own (production refuses the repository's public defaults); the
            # sandbox signs its webhooks with the same one.
            "PSP_API_KEY": "sk_test_bench_" + uuid.uuid4().hex,
            "PSP_PUBLISHABLE_KEY": "pk_test_bench_" + uuid.uuid4().hex,
            "NOTIFICATIONS_ALLOW_PRIVATE_DESTINATIONS": "true",  # everything is on loopback here
            "PSP_WEBHOOK_SECRET": webhook_secret,
            "PSP_SANDBOX_WEBHOOK_SECRET": webhook_secret,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{self.db_name}",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{broker_db}",
            "CELERY_TASK_DEFAULT_QUEUE": self.name,
            "PSP_API_BASE": self.psp_url,
            "LOG_LEVEL": "WARNING",
            # One IP and one key at ~1,000 req/s: limits counted (their Redis round trip is in the
            # figures) but out of reach; a database and prefix of the stack's own.
            "RATE_LIMIT_API_KEY": "100000000/s",
            "RATE_LIMIT_ANONYMOUS": "100000000/s",
            "RATE_LIMIT_WEBHOOK": "100000000/s",
            "RATE_LIMIT_REDIS_URL": f"redis://127.0.0.1:6379/{ratelimit_db}",
            "RATE_LIMIT_KEY_PREFIX": self.name,
            **(extra_env or {}),
        }

    def describe(self) -> str:
        extra = (" " + " ".join(self.worker_extra)) if self.worker_extra else ""
        return (f"gunicorn x{self.web_workers} (DEBUG off); {self.worker_processes} x celery worker --pool "
                f"{self.worker_pool} -c {self.worker_concurrency}{extra} ({self.worker_source}); PSP sandbox")

    def db(self, dbname: str | None = None):
        return psycopg.connect(host="127.0.0.1", user="postgres", dbname=dbname or self.db_name, autocommit=True)

    def manage(self, *args: str) -> str:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                              capture_output=True, text=True).stdout.strip()

    def start_process(self, name: str, argv: list[str]) -> None:
        log = open(self.logdir / f"{name}.log", "a")  # noqa: SIM115  (kept open for the process's life)
        self.procs[name] = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def __enter__(self) -> Stack:
        self.logdir.mkdir(parents=True, exist_ok=True)
        with self.db("postgres") as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.db_name)))
        try:
            return self._start()
        except BaseException:
            self.__exit__()
            raise

    def _start(self) -> Stack:
        self.manage("migrate", "--no-input")
        self.start_process("psp", [sys.executable, "-m", "psp_sandbox", "--port", str(self.psp_port),
                                   "--db", str(self.logdir / "psp.sqlite3")])
        self.start_process("web", [str(VENV_BIN / "gunicorn"), "config.wsgi", "--bind",
                                   f"127.0.0.1:{self.web_port}", "--workers", str(self.web_workers),
                                   "--backlog", "2048"])
        if self.autostart_worker:
            self.start_worker()
        if self.beat:
            self.start_process("beat", [str(VENV_BIN / "celery"), "-A", "config", "beat", "-l", "warning",
                                        "--schedule", str(self.logdir / "beat-schedule")])
        wait_http(f"{self.psp_url}/_sandbox/health")
        wait_http(f"{self.web_url}/health")
        return self

    def start_worker(self) -> None:
        """Start the worker processes not running: ``worker``, ``worker#2``, ... (one process group each)."""
        for i in range(1, self.worker_processes + 1):
            name = "worker" if i == 1 else f"worker#{i}"
            if name in self.procs and self.procs[name].poll() is None:
                continue
            self.start_process(name, [str(VENV_BIN / "celery"), "-A", "config", "worker", "-Q", self.name,
                                      "--pool", self.worker_pool, "-c", str(self.worker_concurrency),
                                      "-n", f"{self.name}.{i}@%h", "--without-gossip", "--without-mingle",
                                      "-l", "warning", *self.worker_extra])

    def kill_workers(self, sig: int = signal.SIGKILL) -> None:
        for name in [name for name in self.procs if name.partition("#")[0] == "worker"]:
            self.kill(name, sig)

    def check_alive(self) -> None:
        """Stop the benchmark, with the log's tail, if a stack process has exited on its own."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.logdir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise SystemExit(f"{name} exited with {proc.returncode}; its log ends:\n{tail}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        os.killpg(proc.pid, sig)
        proc.wait()

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU ms used so far: the machine, each stack process group, PostgreSQL, Redis, this client."""
        groups = {proc.pid: name.partition("#")[0] for name, proc in self.procs.items()}  # workers as one
        ticks = {name: 0 for name in groups.values()} | {"postgres": 0, "postgres: our db": 0, "redis": 0}
        our_db = f" {self.db_name} ".encode()
        machine = machine_cpu_ms()
        for _pid, comm, pgrp, own, children in _processes():
            if pgrp in groups:
                ticks[groups[pgrp]] += own + children
            elif comm == "postgres":
                ticks["postgres"] += own + children  # the postmaster's children: backends that have exited
                if own and _cmdline_has(_pid, our_db):
                    ticks["postgres"] -= own  # a backend of our database, counted on its own
                    ticks["postgres: our db"] += own
            elif comm == "redis-server":
                ticks["redis"] += own + children
        return {"machine": machine, **{k: v * 1000 / CLK_TCK for k, v in ticks.items()},
                "bench client": _own_cpu_ms()}

    def pg_counters(self) -> dict[str, float]:
        """PostgreSQL's counters so far (as flushed by its backends, which may lag a few seconds): sessions
        opened on our database, commits on the other databases."""
        with self.db("postgres") as conn:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            rows = conn.execute("SELECT datname, sessions, xact_commit FROM pg_stat_database "
                                "WHERE datname IS NOT NULL").fetchall()
        ours = [r for r in rows if r[0] == self.db_name]
        return {"sessions": ours[0][1] if ours else 0,
                **{f"commits:{r[0]}": r[2] for r in rows if r[0] not in (self.db_name, "postgres")}}

    def pgbench(self, *, clients: int = 8, seconds: int = 10, scale: int = 8) -> dict | None:
        """pgbench TPC-B against a scratch database ``<ours>_pgbench``; None where pgbench is not installed."""
        if seconds <= 0:
            return None
        binary = shutil.which(os.environ.get("PGBENCH") or "pgbench")
        if binary is None:
            return None
        scratch = f"{self.db_name}_pgbench"
        conninfo = ["-h", "127.0.0.1", "-U", "postgres"]
        with self.db("postgres") as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
        try:
            subprocess.run([binary, *conninfo, "-i", "-q", "-s", str(scale), scratch], check=True,
                           capture_output=True, text=True)
            out = subprocess.run([binary, *conninfo, "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1)),
                                  "-T", str(seconds), scratch], check=True, capture_output=True, text=True).stdout
        finally:
            with self.db("postgres") as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
        tps = re.search(r"tps = ([\d.]+)", out)
        latency = re.search(r"latency average = ([\d.]+) ms", out)
        return {"tps": float(tps.group(1)) if tps else 0.0, "latency_ms": float(latency.group(1)) if latency else 0.0,
                "clients": clients, "seconds": seconds, "scale": scale}

    def __exit__(self, *exc) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        import redis

        redis.Redis.from_url(self.env["CELERY_BROKER_URL"]).delete(self.name)
        if not os.environ.get("BENCH_KEEP_DB"):
            with self.db("postgres") as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.db_name)))
