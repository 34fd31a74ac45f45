"""A transactional test's flush (core/tests/db_flush.py) leaves the database as Django's flush does: every
table empty but the content types and permissions post_migrate makes, the sequences not reset, a writer
still running waited for and its rows gone too; a test that changed the permissions gets Django's flush."""
import threading

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection, connections
from django.test import TransactionTestCase

from conftest import wait_for
from core.models import ApiClient
from core.tests import db_flush
from ledger import accounts
from ledger.services import EntrySpec, ledger_transaction_post
from payments.tests.factories import PaymentOrderFactory
from wallet.services import wallet_credit

pytestmark = pytest.mark.django_db(transaction=True)


def tables_with_rows() -> set[str]:
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    with connection.cursor() as cursor:
        return {table for table, rows in db_flush._row_counts(connection, cursor, tables).items() if rows}


def static_rows() -> tuple[set, set]:
    """The content types and permissions without their ids (Django's flush makes them anew)."""
    return (set(ContentType.objects.values_list("app_label", "model")),
            set(Permission.objects.values_list("content_type__app_label", "content_type__model", "codename", "name")))


def sequences() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT sum(coalesce(last_value, 0)) FROM pg_sequences WHERE schemaname = 'public'")
        return cursor.fetchone()[0]


def books(*, big: bool = True) -> None:
    """Rows in the append-only tables, in tables that refer to each other, in an m2m, and (``big``) a
    table of more than ``TRUNCATE_FROM_ROWS`` rows."""
    order = PaymentOrderFactory()
    ledger_transaction_post(idempotency_key="flush-1", description="flush", entries=[
        EntrySpec(accounts.PSP_RECEIVABLE, "usd", 500),
        EntrySpec(accounts.seller_payable(order.seller_id), "usd", -500),
    ])
    wallet_credit(owner_id=order.seller_id, currency="usd", amount=500, idempotency_key="flush-1", reason="capture")
    Group.objects.create(name="flushed").permissions.add(Permission.objects.get(codename="view_break"))
    if big:
        ApiClient.objects.bulk_create(ApiClient(name=f"c{n}", key_prefix="mk", key_hash=f"h{n}")
                                      for n in range(db_flush.TRUNCATE_FROM_ROWS + 1))


class Case(TransactionTestCase):
    databases = {"default"}


def test_every_table_is_emptied_but_what_post_migrate_makes_and_the_sequences_go_on():
    books()
    assert {"ledger_entry", "wallet_walletmovement", "auth_group_permissions", "core_apiclient"} <= tables_with_rows()
    numbered = sequences()

    assert db_flush._empty("default")

    assert tables_with_rows() == set(db_flush.STATIC_TABLES)
    assert sequences() == numbered
    kept = static_rows()
    call_command("flush", verbosity=0, interactive=False, reset_sequences=False)  # Django's, post_migrate and all
    assert static_rows() == kept
    assert tables_with_rows() == set(db_flush.STATIC_TABLES)
    db_flush.snapshot()  # the ids Django's flush gave them


def test_permissions_changed_by_a_test_get_djangos_flush_which_makes_them_again():
    kept = static_rows()
    Permission.objects.filter(codename="view_delivery").delete()
    books(big=False)

    assert not db_flush._empty("default")  # nothing done
    assert "ledger_entry" in tables_with_rows()
    db_flush.fixture_teardown(Case())

    assert static_rows() == kept
    assert tables_with_rows() == set(db_flush.STATIC_TABLES)
    books(big=False)
    assert db_flush._empty("default")  # the permissions as Django's flush made them are the snapshot now


def _other_connection() -> psycopg.Connection:
    """A connection of its own to the test database: a worker's or a live server's transaction."""
    db = settings.DATABASES["default"]
    return psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"] or None,
                           dbname=db["NAME"])


def _flush_waiting_for(other: psycopg.Connection) -> tuple[threading.Thread, list[BaseException]]:
    """The flush started in a thread, returned once it waits on ``other``'s transaction; what it raised is
    collected in the list."""
    failures: list[BaseException] = []

    def flush() -> None:
        try:
            db_flush._empty("default")
        except BaseException as exc:  # noqa: BLE001  (the caller asserts the list)
            failures.append(exc)
        finally:
            connections.close_all()

    flusher = threading.Thread(target=flush)
    flusher.start()
    with connection.cursor() as cursor:
        def blocked() -> bool:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                           [other.info.backend_pid])
            return cursor.fetchone()[0] == 1

        wait_for(blocked, timeout=10, message="the flush to wait for the other transaction")
    return flusher, failures


def test_a_writer_still_running_is_waited_for_and_its_rows_are_emptied_too():
    with _other_connection() as writer:
        writer.execute("INSERT INTO core_apiclient (id, name, key_prefix, key_hash, is_active, created_at) "
                       "VALUES ('cli_late', 'late', 'mk', 'late', true, now())")  # not committed yet
        flusher, failures = _flush_waiting_for(writer)
        writer.commit()
        flusher.join(timeout=10)
    assert not flusher.is_alive()
    assert failures == []
    assert not ApiClient.objects.exists()


def test_a_transaction_that_deadlocks_with_the_flush_goes_on_and_the_flush_is_tried_again():
    """A worker's transaction holds the last table the flush locks and then asks for the first: PostgreSQL aborts
    the flush (it waited first), which is tried again once that transaction has committed."""
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    first, last = tables[0], tables[-1]
    ApiClient.objects.create(name="kept until the flush", key_prefix="mk", key_hash="h")
    with _other_connection() as worker:
        worker.execute(f'SELECT count(*) FROM "{last}"')  # holds ACCESS SHARE on the last table, uncommitted
        flusher, failures = _flush_waiting_for(worker)
        worker.execute(f'SELECT count(*) FROM "{first}"')  # waits on the flush: a deadlock, the flush aborted
        worker.commit()
        flusher.join(timeout=30)
    assert not flusher.is_alive()
    assert failures == []
    assert not ApiClient.objects.exists()
