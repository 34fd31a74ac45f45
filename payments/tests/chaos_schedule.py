"""The deterministic chaos schedule (issue #16) and the tools its tests use to put a fault, or a
worker's death, at one known point. The random long run stays in ``bench/chaos.py``.

Every fault is forced, not drawn: a sandbox fault card (``pm_sandbox_*``) or a rate of 1.0 that is
set back to 0.0 at a fixed step, and the sandbox's generator is seeded with ``SEED`` so that what
little it still draws (a duplicated webhook) is drawn the same way each run. A worker is killed
where a transaction of the test holds a row the worker needs: it is waiting there, seen in
``pg_stat_activity``, when it gets SIGKILL. Nothing is mocked: the PSP sandbox, PostgreSQL, Redis
and the Celery workers are the real processes.
"""
from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from config.celery_app import app
from conftest import wait_for
from core.tests import loopback
from ledger import accounts
from ledger import selectors as ledger_selectors
from payments.models import PaymentEventState, PaymentOrder, SuspectedDoubleCharge
from payments.services import capture_posting_key, commission_for
from payments.tasks import payment_order_execute_task
from payments.tests.test_checkout_flow import sandbox_money
from wallet import selectors as wallet_selectors

ROOT = Path(__file__).resolve().parents[2]
SEED = 16  # issue #16

RECOVERY_PATHS = frozenset({"retry", "janitor", "sweeper", "webhook_first", "task_first", "redelivery"})


@dataclass(frozen=True)
class Fault:
    """One line of the schedule: what the PSP does to one order, where its worker dies, which
    recovery path must bring it home, and the faults the sandbox must report having injected."""

    path: str
    payment_method: str
    amount: int
    sandbox: dict[str, Any] = field(default_factory=dict)
    webhooks: bool = False
    kill_at: str = ""  # "" | "psp_answered" (before step (c) starts) | "before_commit" (step (c) written)
    injected: dict[str, int] = field(default_factory=dict)


SCHEDULE: dict[str, Fault] = {
    # Two 500s the PSP did not save (Stripe-Should-Retry: true), then its success: the task retries, same key.
    "retry_transient_500": Fault("retry", "pm_sandbox_flaky", 1201, {"flaky_failures": 2},
                                 injected={"transient": 2}),
    # The PSP charged, then closed the connection: unknown. The janitor's search (caught up) finds the charge.
    "janitor_finds_the_charge": Fault("janitor", "pm_sandbox_connection_drop", 1302, {"search_lag_s": 0.5},
                                      injected={"drop_after_charge": 1}),
    # The same, but the search lags behind the charge: the janitor sends it again under the same key,
    # which the PSP answers with the charge it made.
    "janitor_resends_same_key": Fault("janitor", "pm_sandbox_connection_drop", 1403, {"search_lag_s": 5.0},
                                      injected={"drop_after_charge": 1}),
    # A 500 the PSP saved against the key (nothing charged): unknown with a spent key. The janitor
    # waits out the search's lag, then sends it under a new key.
    "janitor_new_key_after_saved_500": Fault("janitor", "pm_card_visa", 1504, {"error_rate": 1.0},
                                             injected={"error": 1}),
    # The broker was down when the checkout committed: never enqueued. The sweeper enqueues it.
    "sweeper_never_enqueued": Fault("sweeper", "pm_card_visa", 1605),
    # The PSP charged and answered (1 s late); the worker dies waiting for the order's row lock to
    # record it. The sweeper re-drives it once its lease is over; the broker's late redelivery is a no-op.
    "sweeper_after_worker_died": Fault("sweeper", "pm_sandbox_timeout", 1706, {"timeout_delay_s": 1.0},
                                       kill_at="psp_answered", injected={"timeout": 1}),
    # The PSP's answer is 1 s late (under our 2 s timeout); its webhook lands first and decides.
    "webhook_first": Fault("webhook_first", "pm_sandbox_timeout", 1807, {"timeout_delay_s": 1.0},
                           webhooks=True, injected={"timeout": 1}),
    # The webhooks are 1.5 s late, and each is delivered twice: the task decides, the webhooks change nothing.
    "task_first": Fault("task_first", "pm_card_visa", 1908, {"webhook_delay_s": 1.5, "webhook_duplicate_rate": 1.0},
                        webhooks=True),
    # The worker dies with step (c) written but not committed (waiting on the wallet row, its last
    # statement): the broker redelivers the message (acks_late) and the PSP replays its answer.
    "redelivered_after_kill_before_commit": Fault("redelivery", "pm_card_visa", 2009, kill_at="before_commit"),
}
assert {f.path for f in SCHEDULE.values()} == RECOVERY_PATHS, "every recovery path is in the schedule"


# -- the PSP sandbox ----------------------------------------------------------------------------

def sandbox_configure(sandbox_url: str, fault: Fault, *, webhook_url: str = "") -> None:
    """Set the sandbox up for one line of the schedule (on top of the reset the fixture did)."""
    config = {"seed": SEED, **fault.sandbox, "webhook_url": webhook_url if fault.webhooks else ""}
    loopback.post(f"{sandbox_url}/_sandbox/config", json=config, timeout=5).raise_for_status()


def sandbox_set(sandbox_url: str, **config: Any) -> None:
    loopback.post(f"{sandbox_url}/_sandbox/config", json=config, timeout=5).raise_for_status()


def psp_charges(sandbox_url: str, order_id: str) -> list[dict[str, Any]]:
    """The charges the PSP holds for one order, whatever their status (``sandbox_money`` is the
    sandbox's own record: charges, refunds, totals, double charges and the faults it injected)."""
    return [c for c in sandbox_money(sandbox_url)["charges"] if c["payment_order_id"] == order_id]


# -- waiting --------------------------------------------------------------------------------------

def node_name(queue: str) -> str:
    return f"{queue}@{socket.gethostname()}"


def wait_worker_idle(queue: str, *, timeout: float = 15) -> None:
    """Until the worker named after ``queue`` runs no task (so a late answer has been handled)."""
    def idle() -> bool:
        replies = app.control.inspect(destination=[node_name(queue)], timeout=1).active() or {}
        return node_name(queue) in replies and not replies[node_name(queue)]

    wait_for(idle, timeout=timeout, interval=0.2, message=f"worker {queue} to be idle")


# -- the books ------------------------------------------------------------------------------------

def assert_settled_once(sandbox_url: str, order: PaymentOrder, *, seller_total: int) -> dict[str, Any]:
    """What every scenario must end with: the order succeeded; the PSP holds exactly one captured
    charge for it (the PaymentIntent on record, its amount) and no double charge at all; one capture
    posting; the seller's wallet equals its ledger payable equals ``seller_total`` (what its
    succeeded orders are owed); what the PSP captured is what the books hold as receivable; no
    suspected double charge; ``audit_money`` clean. Returns the sandbox's record."""
    order.refresh_from_db()
    assert order.state == "succeeded", (order.state, order.failure_code, order.failure_message)
    assert order.payment_event.state == PaymentEventState.SUCCEEDED

    money = sandbox_money(sandbox_url)
    captured = [c for c in money["charges"] if c["payment_order_id"] == order.id and c["status"] == "succeeded"]
    assert len(captured) == 1, captured
    assert captured[0]["payment_intent"] == order.psp_reference
    assert (captured[0]["amount"], captured[0]["currency"]) == (order.amount, order.currency)
    assert money["double_charges"] == []

    key = capture_posting_key(order.id)
    assert ledger_selectors.postings_count_by_key(keys=[key]) == {key: 1}
    wallet = wallet_selectors.wallet_balance(owner_id=order.seller_id, currency=order.currency)
    payable = -ledger_selectors.account_balance(code=accounts.seller_payable(order.seller_id),
                                                currency=order.currency)
    assert wallet == payable == seller_total
    receivable = ledger_selectors.account_balance(code=accounts.PSP_RECEIVABLE, currency=order.currency)
    assert receivable == money["totals"][order.currency]["captured"]
    assert not SuspectedDoubleCharge.objects.exists()

    out = io.StringIO()
    call_command("audit_money", stdout=out)  # raises CommandError on any violation
    assert out.getvalue().strip().splitlines()[-1] == "audit_money: all invariants hold"
    return money


def seller_share(*amounts: int) -> int:
    return sum(amount - commission_for(amount) for amount in amounts)


def transitions(order: PaymentOrder) -> list[tuple[str, str, str]]:
    """``(from, to, actor)`` in order, with the ids dropped from the actors that carry one
    (``webhook:evt_...`` is ``webhook``, ``api_client:...`` is ``api_client``)."""
    def kind(actor: str) -> str:
        return actor.split(":")[0] if actor.startswith(("webhook:", "api_client:")) else actor

    return [(t.from_state, t.to_state, kind(t.actor)) for t in order.transitions.order_by("created_at", "pk")]


# -- the broker -------------------------------------------------------------------------------------

@contextlib.contextmanager
def broker_unreachable():
    """This process's producer points at a port nothing listens on, so a commit's enqueue is lost; the
    real pools are put back after. The write URL is what is changed: ``conf.broker_url`` is read from
    ``$CELERY_BROKER_URL`` first when that is set (the Makefile always sets it), so assigning it would
    leave the real broker in place."""
    real = (app.conf.get("broker_write_url"), app._pool, app.amqp._producer_pool)
    app.conf.broker_write_url = "redis://127.0.0.1:1/0"
    app._pool = app.amqp._producer_pool = None
    try:
        assert app.connection_for_write().as_uri().endswith("127.0.0.1:1/0"), "the broker is still reachable"
        yield
    finally:
        app.conf.broker_write_url, app._pool, app.amqp._producer_pool = real


def send_to(queue: str, order: PaymentOrder) -> None:
    """The order's execution task, published to one worker's queue."""
    payment_order_execute_task.apply_async(kwargs={"payment_order_id": order.id}, queue=queue)


# -- a worker of our own, to kill -------------------------------------------------------------------

class Worker:
    """A ``celery worker`` process on a queue no other worker reads, run as the session's worker is
    (threads, a small database pool), so that it can be SIGKILLed without touching that one.

    ``visibility_timeout``: after how many seconds an unacknowledged message counts as lost. A
    worker restores those when it starts, so a short one makes a new worker redeliver what a
    killed one held (the suite's session worker keeps the default and redelivers nothing).

    ``wait_ready``: ping the worker until it answers. Not for a worker started to redeliver: every
    Celery client that waits for replies (a ping, an inspect) runs kombu's restore pass too, under the
    broker's one restore mutex, and a worker that finds the mutex taken at start does not restore
    again for 100 s. Such a worker is watched through the database instead, until it has redelivered."""

    def __init__(self, queue: str, *, sandbox_url: str, visibility_timeout: int | None = None,
                 wait_ready: bool = True) -> None:
        self.queue, self.sandbox_url, self.visibility_timeout = queue, sandbox_url, visibility_timeout
        self.wait_ready = wait_ready
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Worker:
        db = settings.DATABASES["default"]
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "PSP_API_BASE": self.sandbox_url,
            "DATABASE_POOL_IN_TESTS": "1",
            "DATABASE_POOL_MAX_SIZE": "4",
        }
        if self.visibility_timeout is not None:
            env["CELERY_VISIBILITY_TIMEOUT"] = str(self.visibility_timeout)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", self.queue, "--pool", "threads",
             "-c", "4", "-n", f"{self.queue}@%h", "--without-gossip", "--without-mingle", "-l", "warning"],
            cwd=ROOT, env=env,
        )
        if not self.wait_ready:
            return self
        try:
            wait_for(lambda: self.proc.poll() is not None
                     or app.control.ping(destination=[node_name(self.queue)], timeout=0.3),
                     timeout=60, message=f"worker {self.queue}")
            assert self.proc.poll() is None, "the worker exited at start"
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no acknowledgement, no rollback sent; the process is gone."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def tasks_received(self) -> int:
        """How many tasks this worker has taken from the broker since it started (a Celery client:
        only once a redelivering worker has redelivered, see ``wait_ready``)."""
        stats = app.control.inspect(destination=[node_name(self.queue)], timeout=1).stats() or {}
        return sum(stats.get(node_name(self.queue), {}).get("total", {}).values())

    def __exit__(self, *exc_info) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def new_queue() -> str:
    return f"chaos-{uuid.uuid4().hex[:10]}"


def queue_delete(queue: str) -> None:
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(queue)


# -- holding a row, to stop a worker at a known point -----------------------------------------------

@dataclass(frozen=True)
class Waiter:
    pid: int
    query: str


class RowLock:
    """A transaction of the test's own holding ``FOR UPDATE`` on exactly one row, so that a worker
    that needs the row waits on it: then ``waiter()`` shows that worker's backend and statement."""

    def __init__(self, sql: str, params: list[Any]) -> None:
        self.sql, self.params = sql, params
        self.conn: psycopg.Connection | None = None

    def __enter__(self) -> RowLock:
        db = settings.DATABASES["default"]
        self.conn = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"],
                                    password=db["PASSWORD"] or None, dbname=db["NAME"])
        rows = self.conn.execute(self.sql, self.params).fetchall()
        assert len(rows) == 1, f"{self.sql} locked {len(rows)} rows"
        return self

    def waiter(self) -> Waiter | None:
        """The backend waiting for this lock, if any (read outside the lock's transaction, fresh)."""
        with connection.cursor() as cur:
            cur.execute("SELECT pid, query FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                        [self.conn.info.backend_pid])
            row = cur.fetchone()
        return Waiter(*row) if row else None

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()

    def __exit__(self, *exc_info) -> None:
        self.release()


def tables_written(pid: int) -> set[str]:
    """The tables a backend's open transaction has inserted into or updated (its RowExclusiveLocks)."""
    with connection.cursor() as cur:
        cur.execute("SELECT DISTINCT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE l.pid = %s AND l.mode = 'RowExclusiveLock' AND c.relkind = 'r'", [pid])
        return {name for (name,) in cur.fetchall()}


def backend_gone(pid: int) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return cur.fetchone()[0] == 0


def wait_until(epoch_seconds: float) -> None:
    """Sleep until a moment given by the sandbox's clock (``created_at`` of a charge: same host)."""
    time.sleep(max(0.0, epoch_seconds - time.time()))


# The tables step (c) of a success writes before the wallet move takes the seller's slot (all in one statement).
STEP_C_WRITES = frozenset({"payments_paymentorder", "payments_paymentordertransition", "ledger_ledgertransaction",
                           "ledger_entry"})
CAPTURE_TABLES = frozenset({"ledger_ledgertransaction", "ledger_entry", "wallet_walletmovement", "wallet_walletslot"})


def worker_kill_at(point: str, *, worker: Worker, order: PaymentOrder, sandbox_url: str) -> float:
    """Send ``order`` to ``worker`` and SIGKILL the worker at a kill point of the schedule, having
    checked that it is there; return once its database session has ended (its transaction gone),
    with the time of the kill (the dead worker took its message before it).

    ``psp_answered``: the PSP's answer is 1 s late (``timeout_delay_s``); once the charge exists the
    order's row is held, so the worker, answer in hand, waits at the start of step (c) (the order's
    transition guarded by the claimed row, with its count on the event in the same statement,
    ``payment_order_apply_result(claimed=...)``), having written nothing. ``before_commit``: the seller's
    wallet row and slots are held, so the worker waits in step (c)'s statement at the wallet move (its last
    write), with the order's transition, its audit row, the ledger posting and the movement written and
    uncommitted."""
    if point == "psp_answered":
        send_to(worker.queue, order)
        wait_for(lambda: psp_charges(sandbox_url, order.id), message="the PSP to charge")
        lock = RowLock("SELECT id FROM payments_paymentorder WHERE id = %s AND state = 'executing' FOR UPDATE",
                       [order.id])
    elif point == "before_commit":
        # The wallet's row and its slots (``wallet.models.WalletSlot``): the credit takes a free slot, else
        # queues on one, else (no slots) the row.
        lock = RowLock("SELECT id FROM wallet_wallet w WHERE owner_id = %s AND currency = %s AND (SELECT count(*)"
                       " FROM (SELECT 1 FROM wallet_walletslot s WHERE s.wallet_id = w.id FOR UPDATE) slots) >= 0"
                       " FOR UPDATE",
                       [order.seller_id, order.currency])
    else:
        raise ValueError(f"no such kill point: {point!r}")
    with lock:
        if point == "before_commit":
            send_to(worker.queue, order)
        waiter = wait_for(lock.waiter, timeout=10, message=f"the worker to reach {point}")
        written = tables_written(waiter.pid)
        if point == "psp_answered":
            # Step (c)'s first statement, the order's guarded transition, waits on the row lock with nothing written.
            assert waiter.query.startswith('WITH moved AS (UPDATE "payments_paymentorder"'), waiter.query
            # The RowExclusiveLocks of that statement's own tables, taken as it started (it has no row yet): the
            # order, its audit rows, the event's count with its outbox row, and the capture's posting and wallet
            # credit, which the same statement writes only after the order's row (payment_event_order_decided(
            # transition=..., parts=...), the capture under DECISION_WRITTEN); no other table, and the event's row
            # not even locked.
            assert written <= {"payments_paymentorder", "payments_paymentordertransition", "payments_paymentevent",
                               "payments_merchantevent", *CAPTURE_TABLES}, written
            with connection.cursor() as cur:  # LockNotAvailable if the waiting statement had reached the event
                cur.execute("SELECT 1 FROM payments_paymentevent WHERE id = %s FOR UPDATE NOWAIT",
                            [order.payment_event_id])
        else:
            # The decision's statement, which writes the capture too (its text past the order's transition is cut
            # by pg_stat_activity's 1 kB), waiting on the seller's slot with the rest of step (c) written.
            assert waiter.query.startswith('WITH moved AS (UPDATE "payments_paymentorder"'), waiter.query
            assert written >= STEP_C_WRITES | {"wallet_walletmovement"}, written
        # Step (c) runs on the PSP's answer: the charge is made and answered.
        assert [c["status"] for c in psp_charges(sandbox_url, order.id)] == ["succeeded"]
        worker.kill()
        killed_at = time.time()
    wait_for(lambda: backend_gone(waiter.pid), message="the dead worker's database session to end")
    return killed_at


REDELIVERY_VISIBILITY_TIMEOUT = 1  # seconds


def redelivering_worker(queue: str, *, sandbox_url: str, killed_at: float) -> Worker:
    """A worker that, as it starts, takes back what a worker killed at ``killed_at`` held. It starts
    only once that message is older than its visibility timeout: it looks once, at start, and the
    next look is 100 s later."""
    wait_until(killed_at + REDELIVERY_VISIBILITY_TIMEOUT + 0.5)
    return Worker(queue, sandbox_url=sandbox_url, visibility_timeout=REDELIVERY_VISIBILITY_TIMEOUT,
                  wait_ready=False)
