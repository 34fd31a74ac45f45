"""Schemathesis against a live gunicorn: the OpenAPI schema is a contract the server keeps.

gunicorn runs as a subprocess (production's server, ``DEBUG`` off: ``config.settings.test``) against
the test database pytest-django created, as the Celery worker of ``conftest.py`` does, with a valid
API key. Every operation of ``/api/schema/`` is fuzzed (schemathesis' coverage and fuzzing phases,
valid and invalid data, a fixed seed) with every check schemathesis has, but those excluded below
for a stated reason: 0 server errors, 0 undocumented status codes or headers, 0 responses that
contradict the schema. ``/webhooks/psp`` is not in the schema (it is the PSP's endpoint, signed with
``Stripe-Signature``, not part of our API): ``payments/tests/test_webhook_hardening.py`` covers it.

The number of requests gunicorn served is printed at the end (its access log, so the requests that
checks send on their own, without the key or with another method, count too).
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest
import schemathesis
from schemathesis.engine import Status, events, from_schema

from conftest import ROOT, _stop, free_port, wait_for

# Examples per operation, phase and mode. The suite's 300 send about 10,000 requests in about 2.5 minutes (600 took
# 4 minutes of a 10-minute suite); `make fuzz` runs 1,200: the long fuzz is kept out of the suite, not dropped.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "300"))
SEED = 20260901

pytestmark = pytest.mark.integration

# Checks that can't apply to an operation, and why (all the others run everywhere).
EXCLUDED_CHECKS: dict[str, list[str]] = {
    # Valid per the schema is not enough to be accepted: a checkout names sellers this API key
    # onboarded (random ids are not) and must clear the PSP's minimum charge per currency
    # (payments/psp/stripe_currencies.py), both a 400 no schema can express.
    "checkouts_create": ["positive_data_acceptance"],
    # A refund needs a payment order of this API key that succeeded: random ids are a 404, and a
    # real order is not succeeded without the worker (not started here, it would race the fuzzing).
    "refunds_create": ["positive_data_acceptance"],
    # `cursor` is opaque (a signed position only the server makes): any string is valid per the
    # schema, but only one the server handed out is accepted (`400 invalid_cursor` otherwise).
    "checkouts_list": ["positive_data_acceptance"],
    "sellers_list": ["positive_data_acceptance"],
    "sellers_payouts_list": ["positive_data_acceptance"],
    "sellers_movements_list": ["positive_data_acceptance"],
    "sellers_disputes_list": ["positive_data_acceptance"],
    "webhook_endpoints_list": ["positive_data_acceptance"],
    # A checkout session names sellers this API key onboarded and clears the PSP's minimum charge,
    # as a checkout does (above); its success and cancel URLs must be http(s) URLs.
    "checkout_sessions_create": ["positive_data_acceptance"],
    # An endpoint's URL must be an http(s) URL (Django's URLValidator): the schema's `uri` format
    # admits any scheme (`a:b`), which no schema keyword narrows to the URLs a server can POST to.
    "webhook_endpoints_create": ["positive_data_acceptance"],
    # A balance `as_of` a moment in the future is refused (400): the schema's date-time can't say "past".
    "sellers_balance_retrieve": ["positive_data_acceptance"],
    # `external_account` is a bank account token only the PSP hands out (`btok_…`): any other string,
    # valid per the schema, is refused by the PSP (400).
    "sellers_payout_account_set": ["positive_data_acceptance"],
    # A seller is onboarded without a payout account: until one is set, 404 is the answer, not a
    # resource lost after its creation.
    "sellers_payout_account_retrieve": ["ensure_resource_availability"],
}


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
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
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


def _schema(url: str, key: str):
    config = schemathesis.Config.from_dict({
        "seed": SEED,
        "headers": {"Authorization": f"Bearer {key}"},
        "workers": 2,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            # No NUL in valid strings: PostgreSQL can't store it, and the API says so (400
            # malformed_body, README): a documented refusal, not a schema the generator knows.
            "allow-x00": False,
        },
        "checks": {
            # 422 (an Idempotency-Key reused with another body) is valid data arriving in a state
            # that refuses it, like the 409 schemathesis already expects: the generator reuses keys.
            "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]},
            # A body over the upload limit is refused whole, before it is parsed: 413 is a rejection too; so are
            # a request line or headers over gunicorn's limits (414, 431: answered before the API runs).
            "negative_data_rejection": {"expected-statuses": ["400", "401", "403", "404", "405", "406", "409", "413",
                                                              "414", "415", "422", "428", "429", "431", "5xx"]},
        },
        "operations": [
            {"include-operation-id": operation_id, "checks": {name: {"enabled": False} for name in names}}
            for operation_id, names in EXCLUDED_CHECKS.items()
        ],
    })
    schema = schemathesis.openapi.from_url(f"{url}/api/schema/", config=config)
    schema.config.base_url = url
    return schema


@pytest.fixture
def ast_parse_one_thread_at_a_time(monkeypatch):
    """``ast.parse`` under a lock while schemathesis' two worker threads run.

    CPython 3.11 keeps the AST constructor's recursion depth in state that threads share: when one
    thread's parse yields the GIL (a garbage collection running a finalizer) while another parses,
    the check at the end fails with ``SystemError: AST constructor recursion depth mismatch``
    (python/cpython#106905). Hypothesis parses source to describe the lambdas schemathesis filters
    with, so a CI run failed on it once (``GET /api/v1/checkouts: Runtime Error``), not on our API.
    """
    parse = ast.parse
    lock = threading.Lock()

    def parse_locked(*args, **kwargs):
        with lock:
            return parse(*args, **kwargs)

    monkeypatch.setattr(ast, "parse", parse_locked)


@pytest.mark.django_db(transaction=True)  # gunicorn's writes are committed; the database is flushed after
@pytest.mark.usefixtures("ast_parse_one_thread_at_a_time")
def test_api_keeps_its_schema(gunicorn_url, capsys):
    """Every phase schemathesis has (examples, coverage, fuzzing, stateful): no failure of any check."""
    from core.services import api_client_create

    url, access_log = gunicorn_url
    _, key = api_client_create(name="schemathesis")
    failures: list[str] = []
    errors: list[str] = []
    cases: dict[str, int] = {}
    finished = None
    started = time.monotonic()
    for event in from_schema(_schema(url, key)).execute():
        if isinstance(event, events.ScenarioFinished):
            cases[event.phase.value] = cases.get(event.phase.value, 0) + len(event.recorder.interactions)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        failures.append(f"{event.recorder.label} [{check.name}] {failure.title}: "
                                        f"{failure.message}\n{check.failure_info.code_sample}")
        elif isinstance(event, events.NonFatalError):
            errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            pytest.fail(f"schemathesis stopped: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            finished = event
    elapsed = time.monotonic() - started
    time.sleep(0.5)  # gunicorn writes its access log line after the response
    by_status: dict[str, int] = {}
    for line in access_log.read_text().splitlines():
        status = line.split(" ", 1)[0]
        by_status[status] = by_status.get(status, 0) + 1
    served = sum(by_status.values())
    summary = (f"schemathesis: {sum(cases.values())} test cases "
               f"({', '.join(f'{phase}: {n}' for phase, n in cases.items())}), "
               f"gunicorn served {served} requests in {elapsed:.0f} s "
               f"(by status: {', '.join(f'{s}: {n}' for s, n in sorted(by_status.items()))}); "
               f"{len(failures)} check failures, {len(errors)} errors")
    with capsys.disabled():  # shown without -s
        print(f"\n{summary}")
    assert finished is not None and finished.stop_reason == "completed", summary
    assert not errors, "\n\n".join(errors[:10])
    assert not failures, f"{summary}\n\n" + "\n\n".join(sorted(set(failures))[:30])
    assert not any(status.startswith("5") for status in by_status), summary
    assert served >= int(os.environ.get("SCHEMATHESIS_MIN_REQUESTS", "5000")), summary


def test_a_request_line_over_the_limit_is_a_414_every_operation_documents(gunicorn_url):
    """A query long enough (the fuzzer once sent ``limit`` repeated past 4 KB) is refused by gunicorn before the API
    runs: 414, which every operation of the schema lists (with 431 for headers), so a client knows it can come."""
    url, _ = gunicorn_url
    schema = httpx.get(f"{url}/api/schema/", headers={"Accept": "application/json"}, timeout=10).json()
    operations = [(path, method, operation) for path, item in schema["paths"].items()
                  for method, operation in item.items() if method in {"get", "post", "put", "patch", "delete"}]
    assert operations
    undocumented = [f"{method} {path}" for path, method, operation in operations
                    if not {"414", "431"} <= set(operation["responses"])]
    assert undocumented == []
    answer = httpx.get(f"{url}/api/v1/checkouts", params=[("limit", "x" * 100)] * 50, timeout=10)
    assert answer.status_code == 414
