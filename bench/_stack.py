"""Start a production-style stack of our own for a benchmark: its own database, ports and queue."""
from __future__ import annotations

import os
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


class Stack:
    """PSP sandbox + gunicorn (DEBUG off) + Celery worker on a fresh database ``marketplace_bench_*``."""

    def __init__(self, *, web_workers: int = 4, worker_concurrency: int = 4, beat: bool = False,
                 extra_env: dict[str, str] | None = None):
        self.name = f"bench_{uuid.uuid4().hex[:8]}"
        self.db_name = f"marketplace_{self.name}"
        self.web_port, self.psp_port = free_port(), free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.psp_url = f"http://127.0.0.1:{self.psp_port}"
        self.web_workers, self.worker_concurrency, self.beat = web_workers, worker_concurrency, beat
        self.procs: dict[str, subprocess.Popen] = {}
        self.logdir = ROOT / "var" / "bench" / self.name
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "DJANGO_SECURE_COOKIES": "false",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{self.db_name}",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/6",
            "CELERY_TASK_DEFAULT_QUEUE": self.name,
            "PSP_API_BASE": self.psp_url,
            "LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }

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
        self.start_worker()
        if self.beat:
            self.start_process("beat", [str(VENV_BIN / "celery"), "-A", "config", "beat", "-l", "warning",
                                        "--schedule", str(self.logdir / "beat-schedule")])
        wait_http(f"{self.psp_url}/_sandbox/health")
        wait_http(f"{self.web_url}/health")
        return self

    def start_worker(self) -> None:
        self.start_process("worker", [str(VENV_BIN / "celery"), "-A", "config", "worker", "-Q", self.name,
                                      "-c", str(self.worker_concurrency), "-n", f"{self.name}@%h",
                                      "--without-gossip", "--without-mingle", "-l", "warning"])

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        os.killpg(proc.pid, sig)
        proc.wait()

    def __exit__(self, *exc) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        import redis

        redis.Redis.from_url(self.env["CELERY_BROKER_URL"]).delete(self.name)
        if not os.environ.get("BENCH_KEEP_DB"):
            with self.db("postgres") as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.db_name)))
