"""A transactional test's database left as Django's ``flush`` leaves it, for less.

``TransactionTestCase`` (pytest-django's ``transaction=True`` and ``live_server``) ends each test with
``flush``: one TRUNCATE of every table (each table and index gets a new file, the old ones dropped at
commit) and the ``post_migrate`` signal, which re-creates the content types and permissions the
TRUNCATE emptied (140 statements). Here, in one transaction:

- every table is locked ACCESS EXCLUSIVE, as TRUNCATE locks it: a worker's or a live server's
  transaction still running finishes first, and none reads or writes until the commit;
- only the tables that hold rows are emptied: by DELETE (row triggers off, as TRUNCATE fires none:
  the ledger's append-only triggers refuse a DELETE), or by TRUNCATE where a table holds many rows;
- the content types and permissions are kept, as migrate made them, while they are what they were
  after the last flush (a test that changed them gets Django's own flush, which makes them again).

The state after is Django's: every table empty but the content types and permissions, the sequences
not reset. Where it cannot be had so (a role that is not a superuser, ``available_apps``, a serialized
rollback, another database vendor), Django's flush runs as it did.
"""
from __future__ import annotations

from django.db import OperationalError, connections, transaction
from django.test import TransactionTestCase
from psycopg.errors import DeadlockDetected

# Kept across tests: what post_migrate makes (core.tests.db_flush.snapshot() records them).
STATIC_TABLES = ("django_content_type", "auth_permission")
# A table with this many rows or more is TRUNCATEd rather than DELETEd from (no dead rows left behind).
TRUNCATE_FROM_ROWS = 1000
# Tries of the flush that PostgreSQL aborts to end a deadlock with another transaction (``_empty``).
DEADLOCK_ATTEMPTS = 5

_django_fixture_teardown = TransactionTestCase._fixture_teardown
_static: dict[str, str] = {}  # alias -> md5 of the static tables' rows, as the last full flush left them


def _quote(connection, names) -> str:
    return ", ".join(connection.ops.quote_name(name) for name in names)


def _static_digest(cursor) -> str:
    """An md5 of every row of the static tables, in id order."""
    digests = [f"coalesce((SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM {table} t), '')"
               for table in STATIC_TABLES]
    cursor.execute(f"SELECT {' || '.join(digests)}")
    return cursor.fetchone()[0]


def snapshot(alias: str = "default") -> None:
    """Record the content types and permissions as they are now (migrated, or just flushed by Django)."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if connection.vendor == "postgresql" and cursor.fetchone()[0]:
            _static[alias] = _static_digest(cursor)


def _row_counts(connection, cursor, tables: list[str]) -> dict[str, int]:
    """Each table's rows, counted up to TRUNCATE_FROM_ROWS (one statement for them all)."""
    counts = [f"SELECT '{table.replace(chr(39), chr(39) * 2)}'::text, "
              f"(SELECT count(*) FROM (SELECT FROM {connection.ops.quote_name(table)} LIMIT {TRUNCATE_FROM_ROWS}) s)"
              for table in tables]
    cursor.execute(" UNION ALL ".join(counts))
    return dict(cursor.fetchall())


def _empty(alias: str) -> bool:
    """Empty the database as flush would; False (nothing done) where the static tables changed.

    ``LOCK TABLE`` takes the tables one after another: a worker's or live server's transaction still running
    that holds one of the later tables and then asks for one already taken deadlocks with it. When PostgreSQL
    picks the flush as the one to abort, the flush is rolled back whole and tried again: the other
    transaction goes on meanwhile, and the next try waits for it (as Django's TRUNCATE would have to)."""
    attempt = 1
    while True:
        try:
            return _empty_once(alias)
        except OperationalError as exc:
            if not isinstance(exc.__cause__, DeadlockDetected) or attempt == DEADLOCK_ATTEMPTS:
                raise
            attempt += 1


def _empty_once(alias: str) -> bool:
    connection = connections[alias]
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {_quote(connection, tables)} IN ACCESS EXCLUSIVE MODE")
        if _static_digest(cursor) != _static[alias]:
            return False
        rows = _row_counts(connection, cursor, [table for table in tables if table not in STATIC_TABLES])
        big = [table for table, count in rows.items() if count >= TRUNCATE_FROM_ROWS]
        small = [table for table, count in rows.items() if 0 < count < TRUNCATE_FROM_ROWS]
        if big:  # CASCADE: the tables that refer to these are emptied too (they are all emptied here)
            cursor.execute(f"TRUNCATE {_quote(connection, big)} CASCADE")
        if small:
            cursor.execute("SET LOCAL session_replication_role = replica")  # no row trigger, no FK check
            for table in small:
                cursor.execute(f"DELETE FROM {connection.ops.quote_name(table)}")
    return True


def fixture_teardown(self: TransactionTestCase) -> None:
    """``TransactionTestCase._fixture_teardown``: ``_empty`` where it applies, else Django's flush."""
    plain = self.available_apps is None and not self.serialized_rollback
    aliases = self._databases_names(include_mirrors=False)
    if plain and all(alias in _static for alias in aliases) and all(_empty(alias) for alias in aliases):
        return
    _django_fixture_teardown(self)
    for alias in aliases:
        if alias in _static:
            snapshot(alias)


def install() -> None:
    TransactionTestCase._fixture_teardown = fixture_teardown
