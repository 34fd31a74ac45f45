"""The schemathesis run of ``test_schemathesis.py``, on a stack of its own (``test_api_fuzz_run`` below).

Hypothesis draws the cases in Python under one GIL, so the fuzz keeps one core busy for minutes while the rest of
the suite waits on its own round trips. The root conftest starts this process as the session begins (when the test
is selected), and ``test_api_keeps_its_schema`` reads its outcome: one process, one schemathesis engine over every
operation and phase as before, next to the other tests instead of between them. Nothing is shared with them:

- a database of its own, ``test_<database>_fuzz_<hex>``, migrated here and dropped at the end;
- a PSP sandbox of its own (the tests reset and fault theirs);
- gunicorn (production's server, ``DEBUG`` off: ``config.settings.test``) on it, with an API key made by
  ``create_api_key``; checkouts are enqueued on a queue nobody consumes, deleted at the end.

It writes one JSON document to ``$API_FUZZ_OUT``: the cases per phase, check failures, errors, how the engine
stopped, and gunicorn's answers by status (its access log, so the requests checks send on their own count too).
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from conftest import _answers, _stop, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]

# Examples per operation, phase and mode. The suite's 300 send about 10,000 requests in about 2.5 minutes (600 took
# 4 minutes of a 10-minute suite); `make fuzz` runs 1,200: the long fuzz is kept out of the suite, not dropped.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "300"))
SEED = 20260901

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


def schema_config(key: str) -> dict:
    return {
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
    }


def ast_parse_one_thread_at_a_time() -> None:
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

    ast.parse = parse_locked


def fuzz(url: str, key: str) -> dict:
    """Every phase schemathesis has (examples, coverage, fuzzing, stateful) against ``url``; what the test reads."""
    import schemathesis
    from schemathesis.engine import Status, events, from_schema

    schema = schemathesis.openapi.from_url(f"{url}/api/schema/", config=schemathesis.Config.from_dict(
        schema_config(key)))
    schema.config.base_url = url
    outcome: dict = {"cases": {}, "failures": [], "errors": [], "fatal": None, "stop_reason": None}
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            phase = event.phase.value
            outcome["cases"][phase] = outcome["cases"].get(phase, 0) + len(event.recorder.interactions)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        outcome["failures"].append(f"{event.recorder.label} [{check.name}] {failure.title}: "
                                                   f"{failure.message}\n{check.failure_info.code_sample}")
        elif isinstance(event, events.NonFatalError):
            outcome["errors"].append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            outcome["fatal"] = repr(event.exception)
            break
        elif isinstance(event, events.EngineFinished):
            outcome["stop_reason"] = str(event.stop_reason.value)
    return outcome


def _wait(url: str, proc: subprocess.Popen, what: str) -> None:
    wait_for(lambda: proc.poll() is not None or _answers(url), timeout=60, message=what)
    assert proc.poll() is None, f"{what} exited at start ({proc.returncode})"


class FuzzStack:
    """A database, a PSP sandbox and gunicorn of the fuzz's own; ``with`` removes them all."""

    def __init__(self, database_url: str, workdir: Path) -> None:
        self.admin = psycopg.conninfo.conninfo_to_dict(database_url)
        self.name = f"test_{self.admin['dbname']}_fuzz_{uuid.uuid4().hex[:8]}"
        password = f":{self.admin['password']}" if self.admin.get("password") else ""
        self.workdir, self.procs, self.created = workdir, [], False
        self.prefix = f"fuzz-{uuid.uuid4().hex[:10]}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",  # DEBUG is off there
            "DATABASE_URL": f"postgres://{self.admin.get('user', 'postgres')}{password}@"
                            f"{self.admin.get('host', '127.0.0.1')}:{self.admin.get('port', 5432)}/{self.name}",
            "DATABASE_POOL_IN_TESTS": "1",
            "DATABASE_POOL_MAX_SIZE": "2",
            # A checkout's orders are enqueued on a queue nobody consumes, deleted at the end.
            "CELERY_TASK_DEFAULT_QUEUE": self.prefix,
            # The rate limiter stays on (its code path is fuzzed too) with limits this run never reaches.
            "RATE_LIMIT_API_KEY": "100000/s",
            "RATE_LIMIT_ANONYMOUS": "100000/s",
            "RATE_LIMIT_KEY_PREFIX": self.prefix,
        }
        self.url, self.access_log = "", workdir / "access.log"

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(**{**self.admin, "dbname": "postgres"}, autocommit=True)

    def _start(self, argv: list[str], log: str) -> subprocess.Popen:
        with open(self.workdir / log, "w") as out:
            proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def __enter__(self) -> FuzzStack:
        try:
            with self._admin() as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
            self.created = True
            subprocess.run([sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=self.env,
                           check=True, capture_output=True)
            psp_port, web_port = free_port(), free_port()
            psp = self._start([sys.executable, "-m", "psp_sandbox", "--host", "127.0.0.1", "--port", str(psp_port),
                               "--db", str(self.workdir / "sandbox.sqlite3")], "psp.log")
            self.env["PSP_API_BASE"] = f"http://127.0.0.1:{psp_port}"
            _wait(f"{self.env['PSP_API_BASE']}/_sandbox/config", psp, "PSP sandbox")
            web = self._start([sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{web_port}",
                               "--workers", "2", "--access-logfile", str(self.access_log), "--access-logformat",
                               "%(s)s", "--log-level", "warning"], "gunicorn.log")
            self.url = f"http://127.0.0.1:{web_port}"
            _wait(f"{self.url}/health", web, "gunicorn")
            return self
        except BaseException:
            self.__exit__()
            raise

    def api_key(self) -> str:
        return subprocess.run([sys.executable, "manage.py", "create_api_key", "schemathesis"], cwd=ROOT, env=self.env,
                              check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            _stop(proc)
        if self.created:
            with self._admin() as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))
        from config.celery_app import app

        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(self.prefix)


def answers_by_status(access_log: Path) -> dict[str, int]:
    time.sleep(0.5)  # gunicorn writes its access log line after the response
    by_status: dict[str, int] = {}
    for line in access_log.read_text().splitlines():
        status = line.split(" ", 1)[0]
        by_status[status] = by_status.get(status, 0) + 1
    return by_status


def run(out: Path, database_url: str) -> None:
    ast_parse_one_thread_at_a_time()
    with FuzzStack(database_url, out.parent) as stack:
        started = time.monotonic()
        outcome = fuzz(stack.url, stack.api_key())
        outcome["elapsed"] = time.monotonic() - started
        outcome["by_status"] = answers_by_status(stack.access_log)
    out.write_text(json.dumps(outcome))


def test_api_fuzz_run():
    """The run, as the conftest starts it: ``pytest core/tests/api_fuzz.py`` in a process of its own, with
    ``API_FUZZ_OUT`` and ``API_FUZZ_DATABASE_URL`` set (the suite never collects it: not a ``test_*.py`` file).

    Under pytest, as the fuzz always ran: in a plain Python process the same engine, seed and settings drew
    106 stateful cases where it draws ~1,200 under pytest (measured; the unit phases' cases were the same).
    """
    run(Path(os.environ["API_FUZZ_OUT"]), os.environ["API_FUZZ_DATABASE_URL"])
