"""Two PostgreSQL roles: the owner of the tables, who runs migrations, and the application's role.

The application (gunicorn, Celery) connects as a role that is not a superuser, owns nothing, and
holds only what it needs: SELECT/INSERT/UPDATE/DELETE on ordinary tables, SELECT and INSERT on
the append-only ones (the ledger and wallet movements), SELECT on views and on django_migrations,
USAGE on sequences. Without ownership it cannot ALTER TABLE … DISABLE TRIGGER or DROP TRIGGER;
without TRUNCATE it cannot empty the ledger; not being a superuser it cannot SET
session_replication_role. So the triggers that keep the books append-only and balanced hold
against the application itself, not only against our own code.

``roles_ensure`` is idempotent and runs in one transaction on a connection made with the owner's
URL (a superuser on a developer machine, where it also creates the roles).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

#: Append-only tables (their triggers refuse UPDATE and DELETE): the app may only read and add.
#: A new append-only table belongs here too.
APPEND_ONLY_TABLES = ("ledger_ledgertransaction", "ledger_entry", "wallet_walletmovement")
#: Tables the app only reads: migrations are the owner's business.
READ_ONLY_TABLES = ("django_migrations",)
#: Privileges the app never holds on any table (MAINTAIN exists from PostgreSQL 17).
NEVER = ("TRUNCATE", "TRIGGER", "REFERENCES")
ORDINARY = ("SELECT", "INSERT", "UPDATE", "DELETE")

_RELATION_KIND = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE",
                  "f": "FOREIGN TABLE"}


class RoleSetupError(Exception):
    """The roles cannot be set up as asked (names, attributes, or what the connection may do)."""


@dataclass
class RolesReport:
    created: list[str] = field(default_factory=list)
    owner_changed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _role(conn: psycopg.Connection, name: str) -> dict | None:
    row = conn.execute(
        "SELECT rolsuper, rolcanlogin, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls"
        " FROM pg_roles WHERE rolname = %s", [name]).fetchone()
    if row is None:
        return None
    return dict(zip(("super", "login", "createrole", "createdb", "replication", "bypassrls"), row, strict=True))


def _relations(conn: psycopg.Connection, schema: str, kinds: str) -> list[tuple[str, str, str]]:
    """(name, relkind, owner) of the schema's relations of these kinds, identity/serial sequences excluded
    (they follow their table)."""
    return conn.execute(
        """
        SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relkind = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                          AND d.deptype IN ('a', 'i', 'e'))
        ORDER BY c.relname
        """, [schema, list(kinds)]).fetchall()


def roles_ensure(conn: psycopg.Connection, *, owner_role: str, app_role: str,
                 app_password: str | None = None) -> RolesReport:
    """Create or correct both roles and the app role's privileges on the connection's database
    (its current schema). Commits on success; raises ``RoleSetupError`` when it cannot."""
    if not owner_role or not app_role:
        raise RoleSetupError("both an owner role and an app role are needed")
    if owner_role == app_role:
        raise RoleSetupError(f"the app must not connect as the tables' owner ({owner_role}): "
                             "DATABASE_URL and DATABASE_OWNER_URL need different roles")
    report = RolesReport()
    with conn.transaction():
        me, schema, database = conn.execute("SELECT current_user, current_schema(), current_database()").fetchone()
        _roles_create(conn, report, me=me, owner_role=owner_role, app_role=app_role, app_password=app_password)
        _owner_takes_everything(conn, report, schema=schema, owner_role=owner_role)
        _database_and_schema_grants(conn, database=database, schema=schema, owner_role=owner_role,
                                    app_role=app_role)
        _app_privileges(conn, schema=schema, app_role=app_role)
        _default_privileges(conn, me=me, schema=schema, owner_role=owner_role, app_role=app_role)
        report.problems = roles_check(conn, owner_role=owner_role, app_role=app_role)
        if report.problems:
            raise RoleSetupError("the app role is still too powerful: " + "; ".join(report.problems))
    return report


def _roles_create(conn: psycopg.Connection, report: RolesReport, *, me: str, owner_role: str, app_role: str,
                  app_password: str | None) -> None:
    """The owner role (no login) and the app role (login, no special powers, not a member of the owner)."""
    me_role = _role(conn, me)
    can_manage_roles = me_role["super"] or me_role["createrole"]
    owner, app = sql.Identifier(owner_role), sql.Identifier(app_role)
    if _role(conn, owner_role) is None:
        if not can_manage_roles:
            raise RoleSetupError(f"role {owner_role} does not exist and {me} may not create it")
        # Nobody logs in as it here: migrations connect with DATABASE_OWNER_URL and hand it the objects.
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(owner))
        report.created.append(owner_role)
    if me != owner_role and not me_role["super"]:
        member = conn.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", [owner_role]).fetchone()[0]
        if not member:
            raise RoleSetupError(f"{me} is neither {owner_role} nor a superuser: connect as the owner")
    attributes = sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS")
    if app_password:
        attributes = sql.SQL("{} PASSWORD {}").format(attributes, sql.Literal(app_password))
    existing = _role(conn, app_role)
    if app_role == me or (existing and existing["super"]) or app_role.startswith("pg_"):
        # Never demote a superuser (it may be the one we are connected as): the app needs a role of its own.
        raise RoleSetupError(f"DATABASE_URL's role {app_role} is {me if app_role == me else 'a superuser'}: "
                             "the app needs a role of its own (e.g. marketplace_app)")
    if existing is None:
        if not can_manage_roles:
            raise RoleSetupError(f"role {app_role} does not exist and {me} may not create it")
        conn.execute(sql.SQL("CREATE ROLE {} {}").format(app, attributes))
        report.created.append(app_role)
    elif can_manage_roles:
        conn.execute(sql.SQL("ALTER ROLE {} {}").format(app, attributes))
    if conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [app_role, owner_role]).fetchone()[0]:
        # A member could SET ROLE to the owner and do anything the owner may.
        conn.execute(sql.SQL("REVOKE {} FROM {}").format(owner, app))


def _owner_takes_everything(conn: psycopg.Connection, report: RolesReport, *, schema: str, owner_role: str) -> None:
    """The owner role owns every relation and routine in the schema (extensions' routines excepted)."""
    owner, ident_schema = sql.Identifier(owner_role), sql.Identifier(schema)
    for name, kind, current_owner in _relations(conn, schema, "rpvmSf"):
        if current_owner != owner_role:
            conn.execute(sql.SQL("ALTER {} {}.{} OWNER TO {}").format(
                sql.SQL(_RELATION_KIND[kind]), ident_schema, sql.Identifier(name), owner))
            report.owner_changed.append(name)
    functions = conn.execute(
        """
        SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = %s AND pg_get_userbyid(p.proowner) <> %s
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                          AND d.objid = p.oid AND d.deptype = 'e')
        """, [schema, owner_role]).fetchall()
    for (signature,) in functions:
        conn.execute(sql.SQL("ALTER ROUTINE {} OWNER TO {}").format(sql.SQL(signature), owner))
        report.owner_changed.append(signature)


def _database_and_schema_grants(conn: psycopg.Connection, *, database: str, schema: str, owner_role: str,
                                app_role: str) -> None:
    """The owner creates in the schema; the app connects, uses temporary tables and the schema, creates nothing."""
    owner, app, ident_schema = sql.Identifier(owner_role), sql.Identifier(app_role), sql.Identifier(schema)

    def has(role: str, check: str, obj: str, privilege: str) -> bool:
        return conn.execute(sql.SQL("SELECT {}(%s, %s, %s)").format(sql.Identifier(check)),
                            [role, obj, privilege]).fetchone()[0]

    if not has(owner_role, "has_schema_privilege", schema, "CREATE"):
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(ident_schema, owner))
    if not (has(app_role, "has_database_privilege", database, "CONNECT")
            and has(app_role, "has_database_privilege", database, "TEMPORARY")):
        # TEMPORARY: reconciliation's set-based matching uses temporary tables.
        conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(sql.Identifier(database), app))
    if not has(app_role, "has_schema_privilege", schema, "USAGE"):
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident_schema, app))
    if has(app_role, "has_schema_privilege", schema, "CREATE"):
        # PostgreSQL before 15 let PUBLIC create in public: the app would own what it created.
        conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(ident_schema))
        conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(ident_schema, app))


def _app_privileges(conn: psycopg.Connection, *, schema: str, app_role: str) -> None:
    """The app's privileges on what exists: read and write, never the NEVER ones, and on the append-only
    and read-only tables (and views) only what they allow."""
    app, ident_schema = sql.Identifier(app_role), sql.Identifier(schema)
    never = sql.SQL(", ").join(sql.SQL(p) for p in NEVER)
    conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(
        ident_schema, app))
    conn.execute(sql.SQL("REVOKE {} ON ALL TABLES IN SCHEMA {} FROM {}").format(never, ident_schema, app))
    conn.execute(sql.SQL("REVOKE {} ON ALL TABLES IN SCHEMA {} FROM PUBLIC").format(never, ident_schema))
    conn.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(ident_schema, app))
    conn.execute(sql.SQL("REVOKE UPDATE ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(ident_schema, app))
    existing_tables = {name for name, _kind, _owner in _relations(conn, schema, "rp")}
    views = [name for name, _kind, _owner in _relations(conn, schema, "vmf")]
    for name in (*APPEND_ONLY_TABLES, *READ_ONLY_TABLES, *views):
        if name not in existing_tables and name not in views:
            continue  # not migrated yet
        refused = "UPDATE, DELETE" if name in APPEND_ONLY_TABLES else "INSERT, UPDATE, DELETE"
        for grantee in (app, sql.SQL("PUBLIC")):
            conn.execute(sql.SQL("REVOKE {} ON {}.{} FROM {}").format(
                sql.SQL(refused), ident_schema, sql.Identifier(name), grantee))


def _default_privileges(conn: psycopg.Connection, *, me: str, schema: str, owner_role: str, app_role: str) -> None:
    """The same read and write on what migrations create later, whoever of us creates it."""
    app, ident_schema = sql.Identifier(app_role), sql.Identifier(schema)
    for creator in [owner_role] + ([me] if me != owner_role else []):
        prefix = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {}").format(sql.Identifier(creator),
                                                                                     ident_schema)
        conn.execute(sql.SQL("{} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}").format(prefix, app))
        conn.execute(sql.SQL("{} GRANT USAGE ON SEQUENCES TO {}").format(prefix, app))


def roles_check(conn: psycopg.Connection, *, owner_role: str, app_role: str) -> list[str]:
    """What is wrong with the app role's posture on this database (empty: nothing)."""
    problems = []
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    app = _role(conn, app_role)
    if app is None:
        return [f"role {app_role} does not exist"]
    for attribute in ("super", "createrole", "createdb", "replication", "bypassrls"):
        if app[attribute]:
            problems.append(f"{app_role} has {attribute.upper()}")
    if not app["login"]:
        problems.append(f"{app_role} cannot log in")
    if conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [app_role, owner_role]).fetchone()[0]:
        problems.append(f"{app_role} is a member of {owner_role}")
    for (predefined,) in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'pg\\_%%'"
                                      " AND pg_has_role(%s, oid, 'MEMBER')", [app_role]).fetchall():
        problems.append(f"{app_role} is a member of {predefined}")
    if conn.info.server_version >= 150000 and conn.execute(
            "SELECT has_parameter_privilege(%s, 'session_replication_role', 'SET')", [app_role]).fetchone()[0]:
        problems.append(f"{app_role} may SET session_replication_role (triggers would not fire)")
    if conn.execute("SELECT has_schema_privilege(%s, %s, 'CREATE')", [app_role, schema]).fetchone()[0]:
        problems.append(f"{app_role} may create objects in schema {schema}")
    for name, kind, owner in _relations(conn, schema, "rpvmSf"):
        if owner != owner_role:
            problems.append(f"{name} is owned by {owner}, not {owner_role}")
        if kind == "S":
            continue
        held = {p for p in (*ORDINARY, *NEVER) if conn.execute(
            "SELECT has_table_privilege(%s, %s, %s)",
            [app_role, sql.Identifier(schema, name).as_string(conn), p]).fetchone()[0]}
        if name in APPEND_ONLY_TABLES:
            wanted = {"SELECT", "INSERT"}
        elif name in READ_ONLY_TABLES or kind in "vmf":
            wanted = {"SELECT"}
        else:
            wanted = set(ORDINARY)
        if held != wanted:
            problems.append(f"{app_role} holds {sorted(held)} on {name}, should hold {sorted(wanted)}")
    return problems
