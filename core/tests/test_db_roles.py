"""The app's PostgreSQL role cannot get around the ledger's and wallet's triggers (issue 9, point 3).

The roles are made by the real command on the test database, with names of their own (roles are cluster-wide),
and dropped at the end. Every statement the app is refused runs as that role, over its own connection, inside a
transaction that is rolled back: the test database keeps no rows, and the server no setting, from these tests.
"""
from __future__ import annotations

import io
import secrets
import uuid

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from psycopg import errors, sql

from core.db_roles import APPEND_ONLY_TABLES, roles_check

# Asks pytest-django for the test database (the work itself goes through connections of its own).
pytestmark = pytest.mark.django_db
Refused = errors.InsufficientPrivilege


def _url(db: dict, user: str, password: str | None = None) -> str:
    auth = f"{user}:{password}" if password else user
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _connect(db: dict, user: str, password: str | None = None, **kwargs) -> psycopg.Connection:
    return psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, dbname=db["NAME"],
                           user=user, password=password, **kwargs)


@pytest.fixture(scope="module")
def roles(django_db_setup, django_db_blocker):
    """(database settings, owner role, app role, app password): the command run on the test database."""
    db = dict(connection.settings_dict)  # the test database, created by django_db_setup
    suffix = uuid.uuid4().hex[:10]
    owner, app, password = f"test_owner_{suffix}", f"test_app_{suffix}", secrets.token_urlsafe(16)
    try:
        call_command("db_roles", owner_url=_url(db, db["USER"], db["PASSWORD"]), owner_role=owner,
                     app_url=_url(db, app, password), stdout=io.StringIO())
        yield db, owner, app, password
    finally:
        with _connect(db, db["USER"], db["PASSWORD"] or None, autocommit=True) as admin:
            for role in (owner, app):
                if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                    if role == owner:  # everything back to whoever ran the migrations
                        admin.execute(sql.SQL("REASSIGN OWNED BY {} TO current_user").format(sql.Identifier(role)))
                    admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                    admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def as_app(roles):
    """A connection as the app role, in a transaction that is always rolled back."""
    db, _owner, app, password = roles
    with _connect(db, app, password, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == app
        with conn.transaction(force_rollback=True):
            yield conn


def _refused(conn: psycopg.Connection, statement: str, params=()) -> str:
    """Run ``statement`` in a savepoint; it must be refused for lack of privilege. Returns the message."""
    with pytest.raises(Refused) as refusal, conn.transaction():
        conn.execute(statement, params)
    return str(refusal.value)


def _post_balanced(conn: psycopg.Connection, amount: int = 500) -> tuple[int, list[int]]:
    """A balanced ledger transaction, inserted as whoever ``conn`` is: (transaction id, entry ids)."""
    tag = uuid.uuid4().hex[:12]
    accounts = [conn.execute("INSERT INTO ledger_account (code, name, kind, created_at) VALUES (%s, %s, 'asset', now())"
                             " RETURNING id", [f"test:{tag}:{side}", side]).fetchone()[0] for side in ("dr", "cr")]
    txn = conn.execute("INSERT INTO ledger_ledgertransaction (idempotency_key, description, reference, occurred_at,"
                       " created_at) VALUES (%s, 'roles test', '', now(), now()) RETURNING id",
                       [f"roles-test:{tag}"]).fetchone()[0]
    entries = [conn.execute("INSERT INTO ledger_entry (transaction_id, account_id, currency, amount)"
                            " VALUES (%s, %s, 'usd', %s) RETURNING id", [txn, account, signed]).fetchone()[0]
               for account, signed in zip(accounts, (amount, -amount), strict=True)]
    return txn, entries


def _wallet_with_movement(conn: psycopg.Connection) -> tuple[int, int]:
    tag = uuid.uuid4().hex[:12]
    wallet = conn.execute("INSERT INTO wallet_wallet (owner_id, currency, balance, updated_at)"
                          " VALUES (%s, 'usd', 0, now()) RETURNING id", [f"sel_{tag}"]).fetchone()[0]
    movement = conn.execute("INSERT INTO wallet_walletmovement (wallet_id, amount, idempotency_key, reason, created_at)"
                            " VALUES (%s, 500, %s, 'roles test', now()) RETURNING id",
                            [wallet, f"roles-test:{tag}"]).fetchone()[0]
    return wallet, movement


def _trigger_enabled(conn: psycopg.Connection, table: str, trigger: str) -> bool:
    row = conn.execute("SELECT tgenabled FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = %s",
                       [table, trigger]).fetchone()
    return row is not None and row[0] == "O"


def test_the_app_role_is_neither_superuser_nor_owner_and_holds_only_its_privileges(roles):
    db, owner, app, _password = roles
    with _connect(db, db["USER"], db["PASSWORD"] or None) as admin:
        assert roles_check(admin, owner_role=owner, app_role=app) == []
        attributes = admin.execute("SELECT rolsuper, rolcanlogin, rolbypassrls FROM pg_roles WHERE rolname = %s",
                                   [app]).fetchone()
        assert attributes == (False, True, False)
        owners = dict(admin.execute("SELECT relname, pg_get_userbyid(relowner) FROM pg_class"
                                    " WHERE relname = ANY(%s)", [[*APPEND_ONLY_TABLES, "wallet_wallet"]]).fetchall())
        assert owners == dict.fromkeys([*APPEND_ONLY_TABLES, "wallet_wallet"], owner)
        for table in APPEND_ONLY_TABLES:
            held = [p for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES")
                    if admin.execute("SELECT has_table_privilege(%s, %s, %s)", [app, table, p]).fetchone()[0]]
            assert held == ["SELECT", "INSERT"], table


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_truncate_of_append_only_tables_is_refused(as_app, table):
    assert "permission denied" in _refused(as_app, sql.SQL("TRUNCATE {} CASCADE").format(sql.Identifier(table)))


def test_disable_trigger_then_update_of_the_ledger_is_refused(as_app):
    _txn, entries = _post_balanced(as_app)
    message = _refused(as_app, "ALTER TABLE ledger_entry DISABLE TRIGGER ledger_entry_append_only")
    assert "must be owner" in message
    _refused(as_app, "ALTER TABLE ledger_entry DISABLE TRIGGER ALL")
    assert _trigger_enabled(as_app, "ledger_entry", "ledger_entry_append_only")
    _refused(as_app, "UPDATE ledger_entry SET amount = amount * 2 WHERE id = ANY(%s)", [entries])


def test_session_replication_role_then_an_unbalanced_insert_is_refused(as_app):
    assert "permission denied to set parameter" in _refused(as_app, "SET session_replication_role = replica")
    assert as_app.execute("SHOW session_replication_role").fetchone()[0] == "origin"
    txn, entries = _post_balanced(as_app)
    with pytest.raises(errors.CheckViolation, match="does not balance"), as_app.transaction():
        as_app.execute("INSERT INTO ledger_entry (transaction_id, account_id, currency, amount)"
                       " SELECT transaction_id, account_id, currency, 1 FROM ledger_entry WHERE id = %s", [entries[0]])
        as_app.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the balance check, as at commit


def test_drop_trigger_then_delete_of_wallet_movements_is_refused(as_app):
    _wallet, movement = _wallet_with_movement(as_app)
    assert "must be owner" in _refused(as_app, "DROP TRIGGER wallet_movement_append_only ON wallet_walletmovement")
    assert _trigger_enabled(as_app, "wallet_walletmovement", "wallet_movement_append_only")
    _refused(as_app, "DELETE FROM wallet_walletmovement WHERE id = %s", [movement])


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_entry SET amount = -amount WHERE id = %s",
    "DELETE FROM ledger_entry WHERE id = %s",
    "UPDATE ledger_ledgertransaction SET description = 'changed' WHERE id = %s",
    "DELETE FROM ledger_ledgertransaction WHERE id = %s",
    "UPDATE wallet_walletmovement SET amount = 1 WHERE id = %s",
    "DELETE FROM wallet_walletmovement WHERE id = %s",
])
def test_update_and_delete_of_append_only_rows_are_refused_by_privilege(as_app, statement):
    txn, entries = _post_balanced(as_app)
    _wallet, movement = _wallet_with_movement(as_app)
    row = movement if "wallet" in statement else txn if "ledgertransaction" in statement else entries[0]
    message = _refused(as_app, statement, [row])
    assert "permission denied for table" in message  # privileges, before any trigger is reached


def test_other_ways_around_are_closed_too(as_app, roles):
    _db, owner, _app, _password = roles
    _refused(as_app, "CREATE TRIGGER sneaky BEFORE DELETE ON wallet_walletmovement"
                     " FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()")
    _refused(as_app, "CREATE TABLE public.sneaky (id int)")
    _refused(as_app, "ALTER TABLE ledger_entry OWNER TO CURRENT_USER")
    _refused(as_app, sql.SQL("SET ROLE {}").format(sql.Identifier(owner)))
    _refused(as_app, "INSERT INTO django_migrations (app, name, applied) VALUES ('ledger', 'fake', now())")
    _refused(as_app, "UPDATE payments_settleable_order SET state = 'succeeded'")


def test_ordinary_work_as_the_app_role(as_app):
    txn, entries = _post_balanced(as_app, amount=1250)
    as_app.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the balance trigger runs as the app and passes
    assert as_app.execute("SELECT sum(amount), count(*) FROM ledger_entry WHERE transaction_id = %s",
                          [txn]).fetchone() == (0, 2)
    wallet, _movement = _wallet_with_movement(as_app)
    as_app.execute("UPDATE wallet_wallet SET balance = balance + 500, updated_at = now() WHERE id = %s", [wallet])
    assert as_app.execute("SELECT balance FROM wallet_wallet WHERE id = %s", [wallet]).fetchone()[0] == 500
    as_app.execute("SELECT id FROM wallet_wallet WHERE id = %s FOR UPDATE", [wallet])
    as_app.execute("CREATE TEMP TABLE scratch ON COMMIT DROP AS SELECT 1 AS one")  # reconciliation's matching
    as_app.execute("SELECT reconciliation_settlement_lines_refresh()")  # the import, after its COPY (as the owner)
    as_app.execute("INSERT INTO reconciliation_staged_line (file_id, ordinal) VALUES (-1, 1)")  # the import's staging
    as_app.execute("DELETE FROM reconciliation_staged_line WHERE file_id = -1")  # (a table made by a migration)
    as_app.execute("DELETE FROM wallet_wallet WHERE id = -1")


@pytest.mark.parametrize("creator", ["owner", "migrator"])
def test_future_tables_get_the_same_privileges(roles, creator):
    db, owner, app, _password = roles
    table = f"roles_probe_{uuid.uuid4().hex[:8]}"
    with _connect(db, db["USER"], db["PASSWORD"] or None, autocommit=True) as admin:
        with admin.transaction(force_rollback=True):
            if creator == "owner":
                admin.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(owner)))
            admin.execute(sql.SQL("CREATE TABLE {} (id bigint GENERATED BY DEFAULT AS IDENTITY, n int)").format(
                sql.Identifier(table)))
            held = [p for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES")
                    if admin.execute("SELECT has_table_privilege(%s, %s, %s)", [app, table, p]).fetchone()[0]]
            assert held == ["SELECT", "INSERT", "UPDATE", "DELETE"]


def test_the_command_is_idempotent(roles):
    db, owner, app, password = roles
    out = io.StringIO()
    call_command("db_roles", owner_url=_url(db, db["USER"], db["PASSWORD"]), owner_role=owner,
                 app_url=_url(db, app, password), stdout=out)
    assert "created role" not in out.getvalue() and "handed to" not in out.getvalue()
    with _connect(db, db["USER"], db["PASSWORD"] or None) as admin:
        assert roles_check(admin, owner_role=owner, app_role=app) == []


def test_the_command_refuses_a_superuser_or_the_owner_as_the_app(roles):
    db, owner, _app, _password = roles
    admin_url = _url(db, db["USER"], db["PASSWORD"])
    with pytest.raises(CommandError, match="role of its own"):
        call_command("db_roles", owner_url=admin_url, owner_role=owner, app_url=admin_url)
    with pytest.raises(CommandError, match="must not connect as the tables' owner"):
        call_command("db_roles", owner_url=admin_url, owner_role=owner, app_url=_url(db, owner))
    with _connect(db, db["USER"], db["PASSWORD"] or None) as admin:  # nothing was demoted
        assert admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]

