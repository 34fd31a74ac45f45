"""Shared fixtures: the real PSP sandbox process and a real Celery worker process.

Nothing is mocked. The worker runs as a subprocess against the test database that
pytest-django created, on a queue of its own so no other worker steals its tasks.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from core.tests import loopback

ROOT = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value, or fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def _answers(url: str) -> bool:
    try:
        return loopback.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def _stop(proc: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Send ``sig`` and wait; killed if it has not ended within ``timeout``."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _interrupt(proc: subprocess.Popen) -> None:
    """A run of our own stack (the fuzz, a chaos run) still going: a KeyboardInterrupt in it stops its processes
    and drops its database, given a minute."""
    if proc.poll() is None:
        _stop(proc, sig=signal.SIGINT, timeout=60)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, and a transactional test's flush made cheaper (core/tests/db_flush.py)."""
    from core.tests import db_flush

    with django_db_blocker.unblock():
        db_flush.snapshot()
    db_flush.install()


@pytest.fixture(scope="session")
def psp_sandbox(tmp_path_factory):
    """The PSP sandbox as its own process with its own SQLite storage. Yields its base URL."""
    from django.conf import settings

    from payments.psp import get_psp

    port = free_port()
    db = tmp_path_factory.mktemp("psp-sandbox") / "sandbox.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-m", "psp_sandbox", "--host", "127.0.0.1", "--port", str(port), "--db", str(db)],
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is not None or _answers(f"{url}/_sandbox/config"), message="PSP sandbox")
        assert proc.poll() is None, "PSP sandbox exited at start"
        settings.PSP_API_BASE = url
        get_psp.cache_clear()
        yield url
    finally:
        _stop(proc)
        get_psp.cache_clear()


@pytest.fixture
def sandbox(psp_sandbox):
    """A sandbox reset to its defaults for this test."""
    loopback.post(f"{psp_sandbox}/_sandbox/reset", timeout=5).raise_for_status()
    return psp_sandbox


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, psp_sandbox):
    """A real ``celery worker`` process consuming a queue unique to this test run: threads and a
    database pool smaller than them, as in production."""
    from django.conf import settings

    from config.celery_app import app

    queue = f"test-{uuid.uuid4().hex[:10]}"
    app.conf.task_default_queue = queue
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "PSP_API_BASE": psp_sandbox,
        "DATABASE_POOL_IN_TESTS": "1",  # the production executor: threads sharing a small pool
        "DATABASE_POOL_MAX_SIZE": "4",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "--pool", "threads", "-c", "32",
         "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "-l", "warning"],
        cwd=ROOT, env=env,
    )
    try:
        wait_for(lambda: proc.poll() is not None or app.control.ping(destination=[f"{queue}@{socket.gethostname()}"],
                                                                     timeout=0.5),
                 timeout=60, message="Celery worker")
        assert proc.poll() is None, "Celery worker exited at start"
        yield queue
    finally:
        _stop(proc)
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)


@pytest.fixture
def api(live_server, celery_worker, sandbox):
    """An HTTP client of the live API with a fresh API key, a real worker and a reset sandbox."""
    from core.services import api_client_create

    _, key = api_client_create(name="storefront")
    with loopback.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        yield client


# --- the API fuzz, beside the suite ------------------------------------------------------------------------------

API_FUZZ_TEST = "core/tests/test_schemathesis.py::test_api_keeps_its_schema"
API_FUZZ = pytest.StashKey[tuple]()


def pytest_collection_modifyitems(session, config, items):
    """The fuzz's test waits for the fuzz: run it last, so the other tests run while the fuzz does."""
    items.sort(key=lambda item: item.nodeid == API_FUZZ_TEST)  # stable: the others keep their order


def pytest_collection_finish(session):
    """Start ``core/tests/api_fuzz.py`` (a pytest process and a stack of its own) when its test is selected:
    minutes of one core's Hypothesis work that the other tests, which mostly wait on round trips, run beside."""
    if session.config.option.collectonly or not any(item.nodeid == API_FUZZ_TEST for item in session.items):
        return
    import tempfile

    from django.conf import settings

    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    workdir = Path(tempfile.mkdtemp(prefix="api-fuzz-"))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test",
           "API_FUZZ_OUT": str(workdir / "outcome.json"),
           "API_FUZZ_DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
    with open(workdir / "api_fuzz.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:django", "-p", "no:cacheprovider",
                                 "core/tests/api_fuzz.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    session.config.stash[API_FUZZ] = (proc, workdir)


def pytest_sessionfinish(session, exitstatus):
    proc, workdir = session.config.stash.get(API_FUZZ, (None, None))
    if proc is None:
        return
    _interrupt(proc)  # the session ended first (interrupted, -x)
    if exitstatus == 0:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)  # else kept: its logs are named in the failure
