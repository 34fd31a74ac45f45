"""Schemathesis against a live gunicorn: the OpenAPI schema is a contract the server keeps.

``core/tests/api_fuzz.py`` runs it, started by the root conftest as the session begins, on a stack of its own
(database, PSP sandbox, gunicorn: production's server, ``DEBUG`` off, ``config.settings.test``) with a valid API
key, while the other tests run; ``test_api_keeps_its_schema`` runs last and reads its outcome. Every operation of
``/api/schema/`` is fuzzed (schemathesis' coverage, fuzzing and stateful phases, valid and invalid data, a fixed
seed) with every check schemathesis has, but those excluded in ``api_fuzz.EXCLUDED_CHECKS`` for a stated reason:
0 server errors, 0 undocumented status codes or headers, 0 responses that contradict the schema.
``/webhooks/psp`` is not in the schema (it is the PSP's endpoint, signed with ``Stripe-Signature``, not part of
our API): ``payments/tests/test_webhook_hardening.py`` covers it.

The number of requests gunicorn served is printed at the end (its access log, so the requests that
checks send on their own, without the key or with another method, count too).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import httpx
import pytest

from conftest import API_FUZZ, ROOT, _stop, free_port, wait_for
from core.tests import loopback

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gunicorn_url(django_db_setup, psp_sandbox, tmp_path_factory):
    """gunicorn serving the test database; yields its base URL. Its access log is ``<url>.log``."""
    from django.conf import settings as django_settings

    port = free_port()
    logs = tmp_path_factory.mktemp("gunicorn")
    db = django_settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    prefix = f"fuzz-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",  # DEBUG is off there
        "DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DATABASE_POOL_IN_TESTS": "1",
        "DATABASE_POOL_MAX_SIZE": "2",
        "PSP_API_BASE": psp_sandbox,
        # A checkout's orders are enqueued on a queue nobody consumes, deleted at the end.
        "CELERY_TASK_DEFAULT_QUEUE": prefix,
        # The rate limiter stays on (its code path is fuzzed too) with limits this run never reaches.
        "RATE_LIMIT_API_KEY": "100000/s",
        "RATE_LIMIT_ANONYMOUS": "100000/s",
        "RATE_LIMIT_KEY_PREFIX": prefix,
    }
    access_log = logs / "access.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--access-logfile", str(access_log), "--access-logformat", "%(s)s",
         "--error-logfile", str(logs / "error.log"), "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return loopback.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(lambda: proc.poll() is not None or up(), timeout=60, message="gunicorn")
        assert proc.poll() is None, f"gunicorn exited at start: {(logs / 'error.log').read_text()}"
        yield url, access_log
    finally:
        _stop(proc)
        from config.celery_app import app

        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(prefix)


@pytest.fixture
def api_fuzz_outcome(request) -> dict:
    """The outcome ``core/tests/api_fuzz.py`` wrote, once its process ended (the conftest started it)."""
    proc, workdir = request.config.stash.get(API_FUZZ, (None, None))
    if proc is None:
        pytest.fail("the API fuzz was not started (conftest.pytest_collection_finish)")
    returncode = proc.wait(timeout=1800)
    log = (workdir / "api_fuzz.log").read_text()
    assert returncode == 0, f"the API fuzz exited {returncode} (logs in {workdir}):\n{log[-3000:]}"
    return json.loads((workdir / "outcome.json").read_text())


def test_api_keeps_its_schema(api_fuzz_outcome, capsys):
    """Every phase schemathesis has (examples, coverage, fuzzing, stateful): no failure of any check."""
    outcome = api_fuzz_outcome
    cases, by_status, failures, errors = (outcome["cases"], outcome["by_status"], outcome["failures"],
                                          outcome["errors"])
    served = sum(by_status.values())
    summary = (f"schemathesis: {sum(cases.values())} test cases "
               f"({', '.join(f'{phase}: {n}' for phase, n in cases.items())}), "
               f"gunicorn served {served} requests in {outcome['elapsed']:.0f} s "
               f"(by status: {', '.join(f'{s}: {n}' for s, n in sorted(by_status.items()))}); "
               f"{len(failures)} check failures, {len(errors)} errors")
    with capsys.disabled():  # shown without -s
        print(f"\n{summary}")
    assert outcome["fatal"] is None, f"schemathesis stopped: {outcome['fatal']}"
    assert outcome["stop_reason"] == "completed", summary
    assert not errors, "\n\n".join(errors[:10])
    assert not failures, f"{summary}\n\n" + "\n\n".join(sorted(set(failures))[:30])
    assert not any(status.startswith("5") for status in by_status), summary
    assert served >= int(os.environ.get("SCHEMATHESIS_MIN_REQUESTS", "5000")), summary


@pytest.mark.django_db  # so that pytest-django makes the test database gunicorn serves, when this test runs alone
def test_a_request_line_over_the_limit_is_a_414_every_operation_documents(gunicorn_url):
    """A query long enough (the fuzzer once sent ``limit`` repeated past 4 KB) is refused by gunicorn before the API
    runs: 414, which every operation of the schema lists (with 431 for headers), so a client knows it can come."""
    url, _ = gunicorn_url
    schema = loopback.get(f"{url}/api/schema/", headers={"Accept": "application/json"}, timeout=10).json()
    operations = [(path, method, operation) for path, item in schema["paths"].items()
                  for method, operation in item.items() if method in {"get", "post", "put", "patch", "delete"}]
    assert operations
    undocumented = [f"{method} {path}" for path, method, operation in operations
                    if not {"414", "431"} <= set(operation["responses"])]
    assert undocumented == []
    answer = loopback.get(f"{url}/api/v1/checkouts", params=[("limit", "x" * 100)] * 50, timeout=10)
    assert answer.status_code == 414
