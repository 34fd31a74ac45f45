"""One way to change state: a django-fsm transition, written with its audit row in one statement.

A stateful model (payment order, payment event, refund) names the fields its transitions and
their callers may change (``TRANSITION_FIELDS``) and keeps its audit rows in a model derived from
``core.models.TransitionAudit`` under ``related_name="transitions"``. Its service locks the row,
sets what the transition does not (an attempt count, a next action time), and calls
``transition_apply``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from django.db import connection, models
from django.utils import timezone
from django_fsm import ConcurrentTransition, FSMFieldMixin, TransitionNotAllowed, can_proceed
from psycopg.types.json import Jsonb


@cache
def _transition_sql(model: type[models.Model], guarded: bool = False
                    ) -> tuple[tuple[str, str], str, tuple[str, ...], bool]:
    """((statement, the same as two CTEs), state field name, fields written, whether the audit row has a
    ``detail``) for ``model``, built once from its own names. ``guarded``: the UPDATE also requires each
    written field to hold the value it was read with (one more parameter per field, after the state's)."""
    meta = model._meta
    state = next(f for f in meta.concrete_fields if isinstance(f, FSMFieldMixin))
    fields = tuple(model.TRANSITION_FIELDS)
    if state.name not in fields:
        raise TypeError(f"{model.__name__}.TRANSITION_FIELDS must name {state.name!r}")
    audit = meta.get_field("transitions")  # the reverse side of the audit model's foreign key
    audit_meta = audit.related_model._meta
    sets = ", ".join(f'"{meta.get_field(name).column}" = %s' for name in fields)
    audit_fields = ["from_state", "to_state", "actor", "reason", "created_at"]
    has_detail = any(f.name == "detail" for f in audit_meta.concrete_fields)
    if has_detail:
        audit_fields.append("detail")
    columns = ", ".join(f'"{c}"' for c in (audit.field.column, *(audit_meta.get_field(n).column
                                                                 for n in audit_fields)))
    values = ", ".join("%s" for _ in audit_fields)
    pk = meta.pk.column
    guard = "".join(f' AND "{meta.get_field(name).column}" IS NOT DISTINCT FROM %s' for name in fields if guarded)
    moved = f'moved AS (UPDATE "{meta.db_table}" SET {sets} WHERE "{pk}" = %s AND "{state.column}" = %s{guard} ' \
            f'RETURNING "{pk}")'
    audit_insert = f'INSERT INTO "{audit_meta.db_table}" ({columns}) SELECT "{pk}", {values} FROM moved RETURNING 1'
    return (f"WITH {moved} {audit_insert}", f"{moved}, moved_audit AS ({audit_insert})"), state.name, fields, \
        has_detail


def transition_apply(obj: models.Model, method: Callable[..., object], *, actor: str, reason: str,
                     audit_detail: dict | None = None, guarded: bool = False, **kwargs: object) -> None:
    """Apply one django-fsm transition to a locked ``obj`` and write it with its audit row.

    The transition method checks the move (``can_proceed``) and changes fields in memory; one
    statement then writes ``TRANSITION_FIELDS`` (only if the row is still in the state it was
    read in: django-fsm's concurrency check) and inserts the audit row with actor and reason, and
    ``audit_detail`` (JSON) when the audit model has a ``detail`` field.
    ``guarded``, for an ``obj`` read without its row lock: written only if every one of
    ``TRANSITION_FIELDS`` still holds the value ``obj`` has on entry (optimistic concurrency: the
    row is then as it was read, so the decision taken on it stands), else ``ConcurrentTransition``
    and nothing written.
    Raises ``TransitionNotAllowed`` or ``ConcurrentTransition``.
    """
    write = transition_prepare(obj, method, actor=actor, reason=reason, audit_detail=audit_detail, guarded=guarded,
                               **kwargs)
    with connection.cursor() as cur:
        cur.execute(write.statement, write.params)
        written = cur.fetchone() is not None
    write.finish(written=written)


@dataclass(frozen=True)
class TransitionWrite:
    """A transition made in memory whose write is still to run: ``statement`` alone, or ``ctes`` (``moved``: the
    row's UPDATE returning its key; ``moved_audit``: its audit row, returning one row when written) in a
    caller's statement that writes more after it. Either way with ``params``, then ``finish``."""

    obj: models.Model
    from_state: str
    statement: str
    ctes: str
    params: list

    def finish(self, *, written: bool) -> None:
        """After the write: ``written`` (its audit row returned), or ``ConcurrentTransition``."""
        if not written:
            raise ConcurrentTransition(f"{self.obj.pk} is no longer {self.from_state}")
        self.obj._update_initial_state()  # as django-fsm's save() does: a later save() checks the new state


def transition_prepare(obj: models.Model, method: Callable[..., object], *, actor: str, reason: str,
                       audit_detail: dict | None = None, guarded: bool = False, **kwargs: object) -> TransitionWrite:
    """``transition_apply`` up to its statement: the transition checked and made in memory, its write returned
    to be run (``TransitionWrite``). Raises ``TransitionNotAllowed``."""
    (sql, ctes), state_name, fields, has_detail = _transition_sql(type(obj), guarded)
    if not can_proceed(method):
        raise TransitionNotAllowed(f"{obj.pk} cannot {method.__name__} from {getattr(obj, state_name)}",
                                   object=obj, method=method)
    from_state = getattr(obj, state_name)
    read = [getattr(obj, name) for name in fields] if guarded else []
    method(**kwargs)
    now = timezone.now()
    if "updated_at" in fields:
        obj.updated_at = now
    params = [*(getattr(obj, name) for name in fields), obj.pk, from_state, *read,
              from_state, getattr(obj, state_name), actor[:100], reason[:500], now]
    if has_detail:
        params.append(Jsonb(audit_detail) if audit_detail is not None else None)
    return TransitionWrite(obj=obj, from_state=from_state, statement=sql, ctes=ctes, params=params)
