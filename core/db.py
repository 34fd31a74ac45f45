"""Database connections around slow calls, and new rows of several tables in one statement."""
from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


def db_connection_release() -> None:
    """Hand this thread's connection back to the pool before a slow call to the outside world
    (the PSP), so that a hundred threads waiting on the PSP hold no connection between them.
    Outside a pool (tests, persistent connections) and inside a transaction it does nothing."""
    if connection.connection is not None and not connection.in_atomic_block and connection.pool:
        connection.close()


def _insert(objs: Sequence[models.Model], params: list) -> str:
    """``INSERT`` of ``objs`` (one model) with every concrete field as Django's own insert writes it:
    defaults, ``auto_now_add`` and the field's conversion to the database (an ``AutoField`` left out)."""
    meta = objs[0]._meta
    fields = [f for f in meta.concrete_fields if not isinstance(f, models.AutoField)]
    rows = []
    for obj in objs:
        params.extend(f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields)
        rows.append("(" + ", ".join(["%s"] * len(fields)) + ")")
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    return f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) VALUES {', '.join(rows)}"


def objects_insert(*groups: Sequence[models.Model]) -> None:
    """Insert new instances, one model per group, parents first, in one statement (a CTE per group
    but the last): one round trip where ``create`` and ``bulk_create`` take one per group and compile
    each. A child may name a parent inserted here (Django's foreign keys are checked at commit).
    No signals are sent; primary keys must be set already, except an ``AutoField``'s (not read back)."""
    params: list = []
    inserts = [_insert(objs, params) for objs in groups if objs]
    ctes = [f"g{i} AS ({insert})" for i, insert in enumerate(inserts[:-1])]
    sql = (f"WITH {', '.join(ctes)} " if ctes else "") + inserts[-1]
    with connection.cursor() as cur:
        cur.execute(sql, params)
    for objs in groups:
        for obj in objs:
            obj._state.adding, obj._state.db = False, connection.alias
