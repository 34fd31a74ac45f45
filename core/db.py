"""Database connections around slow calls, and new rows of several tables in one statement."""
from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from django.db import connection, models, transaction
from psycopg.adapt import Transformer


def db_connection_release() -> None:
    """Hand this thread's connection back to the pool before a slow call to the outside world
    (the PSP), so that a hundred threads waiting on the PSP hold no connection between them.
    Outside a pool (tests, persistent connections) and inside a transaction it does nothing."""
    if connection.connection is not None and not connection.in_atomic_block and connection.pool:
        connection.close()


#: Fields whose preparation for the database leaves a value of these types as it is (Django's
#: ``get_db_prep_save`` runs several calls per field only to give it back): written without it.
_AS_IS = ((models.CharField, (str,)), (models.TextField, (str,)), (models.IntegerField, (int,)),
          (models.BooleanField, (bool,)), (models.DateTimeField, (datetime,)))
_PREPARATION = ("get_prep_value", "get_db_prep_value", "get_db_prep_save")


def _written_as_is(field: models.Field) -> tuple[type, ...]:
    """The value types ``field`` writes unchanged (none when its class changes Django's preparation)."""
    if field.is_relation:
        return _written_as_is(field.target_field) if isinstance(field, models.ForeignKey) else ()
    for base, types in _AS_IS:
        if isinstance(field, base) and all(getattr(type(field), name) is getattr(base, name) for name in _PREPARATION):
            return types
    return ()


@functools.cache
def _columns(model: type[models.Model]) -> tuple[str, tuple[tuple[models.Field, tuple[type, ...], bool], ...]]:
    """The model's insert: its columns and, per field, the value types written as they are and whether its
    ``pre_save`` is Django's plain one (the attribute's value, read here without the call)."""
    fields = [f for f in model._meta.concrete_fields if not isinstance(f, models.AutoField)]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    return (f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({columns}) VALUES ",
            tuple((f, _written_as_is(f), type(f).pre_save is models.Field.pre_save) for f in fields))


def _prepared(field: models.Field, as_is: tuple[type, ...], plain: bool, obj: models.Model):
    value = getattr(obj, field.attname) if plain else field.pre_save(obj, add=True)
    if value is None or type(value) in as_is and (type(value) is not datetime or value.tzinfo is not None):
        return value
    return field.get_db_prep_save(value, connection)


def _insert(objs: Sequence[models.Model], literal) -> str:
    """``INSERT`` of ``objs`` (one model) with every concrete field as Django's own insert writes it:
    defaults, ``auto_now_add`` and the field's conversion to the database (an ``AutoField`` left out),
    each value written as the SQL literal ``literal`` makes of it."""
    head, fields = _columns(type(objs[0]))
    rows = ("(" + ", ".join([literal(_prepared(field, as_is, plain, obj)) for field, as_is, plain in fields]) + ")"
            for obj in objs)
    return head + ", ".join(rows)


def objects_insert(*groups: Sequence[models.Model]) -> None:
    """Insert new instances, one model per group, parents first, in one statement (a CTE per group
    but the last): one round trip where ``create`` and ``bulk_create`` take one per group and compile
    each. A child may name a parent inserted here (Django's foreign keys are checked at commit).
    No signals are sent; primary keys must be set already, except an ``AutoField``'s (not read back).

    The values are written into the statement as literals by psycopg's own adaptation, which is what
    Django's client-side binding sends anyway: with them as parameters, psycopg parsed the statement
    again on every call (it caches its parse only up to 50 parameters; a 2-order checkout has 64)."""
    with connection.cursor() as cur:
        tx = Transformer(connection.connection)
        encoding = connection.connection.info.encoding

        written: dict[tuple[type, object], str] = {}  # a statement's repeated strings and numbers, adapted once

        def literal(value) -> str:
            if value is None:
                return "NULL"
            kind = type(value)
            if kind is not str and kind is not int and kind is not bool:
                return tx.as_literal(value).decode(encoding)
            key = (kind, value)
            text = written.get(key)
            if text is None:
                text = written[key] = tx.as_literal(value).decode(encoding)
            return text

        inserts = [_insert(objs, literal) for objs in groups if objs]
        ctes = [f"g{i} AS ({insert})" for i, insert in enumerate(inserts[:-1])]
        cur.execute((f"WITH {', '.join(ctes)} " if ctes else "") + inserts[-1])
    for objs in groups:
        for obj in objs:
            obj._state.adding, obj._state.db = False, connection.alias


def array_literal(values: list[str] | list[int]) -> str:
    """``values`` as a PostgreSQL array literal (``{"a","b"}``), for a parameter cast to ``text[]`` or
    ``bigint[]``: PostgreSQL reads it back element for element (each quoted, ``"`` and ``\\`` escaped). psycopg
    dumps a Python list through its Python-level list dumper, about four times the CPU of a string: a ledger
    posting's three arrays were ~15 us of its statement."""
    return "{" + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


class StatementPart(Protocol):
    """One app's write made ready to run in a statement of several (``statement_parts_run``): its CTEs
    (``name AS (...)``, names of its own), their ``params`` in order, and the ``width`` values of ``columns``
    it answers. ``missing`` says from those values whether a row it needs did not exist yet (then it wrote
    nothing it would not write again), and ``open_missing`` creates such rows in a statement of its own.
    ``finish`` writes, from its values, what the part left to a statement of its own (most parts: nothing), in
    the statement's transaction."""

    ctes: str
    columns: str
    width: int
    params: list

    def missing(self, row: tuple) -> bool: ...

    def open_missing(self) -> None: ...

    def finish(self, row: tuple) -> None: ...


@functools.cache
def _parts_statement(ctes: tuple[str, ...], columns: tuple[str, ...]) -> str:
    return f"WITH {', '.join(ctes)} SELECT {', '.join(columns)}"


@transaction.atomic(savepoint=False)  # no round trip inside a caller's transaction
def statement_parts_run(*parts: StatementPart) -> list[tuple]:
    """Run ``parts`` as one statement and answer each its own columns. Their CTEs are written in the order
    given; a part that must write after another says so in its own WHERE (``LedgerPosting.written``). A part
    whose rows were missing opens them, and the statement runs once more: every part must be idempotent (a
    key it wrote the first time writes nothing the second). In one transaction, so that a part written by the
    first run never commits without the others' second, nor without a part's ``finish``."""
    statement = _parts_statement(tuple(p.ctes for p in parts), tuple(p.columns for p in parts))
    params = [value for part in parts for value in part.params]
    with connection.cursor() as cur:
        cur.execute(statement, params)
        rows = _finished(cur.fetchone(), parts)
        missing = [part for part, own in zip(parts, rows, strict=True) if part.missing(own)]
        if missing:
            for part in missing:
                part.open_missing()
            cur.execute(statement, params)
            rows = _finished(cur.fetchone(), parts)
    return rows


def _finished(row: tuple, parts: Sequence[StatementPart]) -> list[tuple]:
    """Each part's own columns of one run, once it has written what that run left to it (``finish``): the
    first run's writes stand whatever the second run finds (a key written then is not written again)."""
    rows = parts_split(row, parts)
    for part, own in zip(parts, rows, strict=True):
        part.finish(own)
    return rows


def parts_split(row: tuple, parts: Sequence[StatementPart]) -> list[tuple]:
    """Each part's own columns of one row of the parts' statement."""
    rows, start = [], 0
    for part in parts:
        rows.append(tuple(row[start:start + part.width]))
        start += part.width
    return rows
