"""A payment order's row read, locked and claimed in SQL written once.

The executor does this for every order, and the ORM compiles its queries anew on every call
(about a third of an order's CPU in the worker). The statements are built from the models' own
names and the claim from the state machine's own ``start`` transition, so neither can drift from
the models; no field read here needs a converter from the database's value (a test holds them
to the ORM's own load).
"""
from __future__ import annotations

from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connection
from django.utils import timezone

from core.db import array_literal
from payments.models import PaymentEvent, PaymentOrder, PaymentOrderTransition, PSPCustomer

_ORDER, _EVENT, _AUDIT = PaymentOrder._meta, PaymentEvent._meta, PaymentOrderTransition._meta
_CUSTOMER = PSPCustomer._meta
_ORDER_FIELDS = [f.attname for f in _ORDER.concrete_fields]
_EVENT_FIELDS = [f.attname for f in _EVENT.concrete_fields]


def _columns(meta, fields: list[str], alias: str) -> str:
    return ", ".join(f'{alias}."{meta.get_field(name).column}"' for name in fields)


def _start_transition():
    """(source, target) of ``PaymentOrder.start``: the move the claim makes."""
    start = next(t for t in _ORDER.get_field("state").get_all_transitions(PaymentOrder) if t.name == "start")
    return start.source, start.target


_EVENT_JOIN = (f'JOIN "{_EVENT.db_table}" e ON e."{_EVENT.pk.column}" = o."{_ORDER.get_field("payment_event").column}"')

# select_for_update(of=("self",)).select_related("payment_event")
_LOCK_SQL = (f'SELECT {_columns(_ORDER, _ORDER_FIELDS, "o")}, {_columns(_EVENT, _EVENT_FIELDS, "e")} '
             f'FROM "{_ORDER.db_table}" o {_EVENT_JOIN} WHERE o."{_ORDER.pk.column}" = %s FOR UPDATE OF o')

_START_SOURCE, _START_TARGET = _start_transition()

# The claim: lock the row; if it is not started (or executing, a task's retry), count the attempt,
# set its next action and, when it starts, move it to executing with its audit row; answer the row
# as it now is (with its event, or alone for a caller that holds the event already: its event's task).
# One statement in autocommit: no BEGIN, no COMMIT round trip.
_CLAIM_CTES = f"""
WITH prev AS (
    SELECT "{_ORDER.pk.column}" AS id, state FROM "{_ORDER.db_table}" WHERE "{_ORDER.pk.column}" = %(id)s FOR UPDATE
), claimed AS (
    UPDATE "{_ORDER.db_table}" o
    SET state = %(target)s, attempts = o.attempts + 1, next_action_at = %(next_action_at)s, updated_at = %(now)s
    FROM prev WHERE o."{_ORDER.pk.column}" = prev.id AND prev.state IN (%(source)s, %(target)s)
    RETURNING {_columns(_ORDER, _ORDER_FIELDS, "o")}, prev.state AS from_state
), audit AS (
    INSERT INTO "{_AUDIT.db_table}" ("{_AUDIT.get_field("payment_order").column}", from_state, to_state, actor,
                                     reason, created_at)
    SELECT "{_ORDER.pk.column}", from_state, %(target)s, %(actor)s, %(reason)s, %(now)s
    FROM claimed WHERE from_state = %(source)s
)
"""
_CLAIM_SQL = f'{_CLAIM_CTES}SELECT o.*, {_columns(_EVENT, _EVENT_FIELDS, "e")} FROM claimed o {_EVENT_JOIN}'
_CLAIM_ORDER_SQL = f"{_CLAIM_CTES}SELECT o.* FROM claimed o"


def _order_from_row(row: tuple) -> PaymentOrder:
    n = len(_ORDER_FIELDS)
    order = PaymentOrder.from_db(DEFAULT_DB_ALIAS, _ORDER_FIELDS, row[:n])
    order.payment_event = PaymentEvent.from_db(DEFAULT_DB_ALIAS, _EVENT_FIELDS, row[-len(_EVENT_FIELDS):])
    return order


def lock_order(payment_order_id: str) -> PaymentOrder:
    """The order, locked until the transaction ends, with its payment event (not locked: its
    counters are taken under their own row lock, after the order's)."""
    with connection.cursor() as cur:
        cur.execute(_LOCK_SQL, [payment_order_id])
        row = cur.fetchone()
    if row is None:
        raise PaymentOrder.DoesNotExist(f"payment order {payment_order_id} does not exist")
    return _order_from_row(row)


def order_claim(payment_order_id: str, *, actor: str, reason: str, next_action_at: datetime,
                event: PaymentEvent | None = None) -> PaymentOrder | None:
    """Claim the order for a call to the PSP: ``start`` it (``not_started`` → ``executing``, with its
    audit row) or, already executing, count one more attempt; in one statement, committed on its own
    when no transaction is open. ``None`` if the order is in any other state (nothing changed).
    ``event``: the order's payment event as its caller read it (its task), given to the order instead of
    reading it again with the claim; an event that is not the order's is refused (``ValueError``)."""
    with connection.cursor() as cur:
        cur.execute(_CLAIM_SQL if event is None else _CLAIM_ORDER_SQL,
                    {"id": payment_order_id, "source": _START_SOURCE, "target": _START_TARGET,
                     "next_action_at": next_action_at, "now": timezone.now(), "actor": actor[:100],
                     "reason": reason[:500]})
        row = cur.fetchone()
    if row is None or event is None:
        return None if row is None else _order_from_row(row)
    order = PaymentOrder.from_db(DEFAULT_DB_ALIAS, _ORDER_FIELDS, row[:len(_ORDER_FIELDS)])
    if order.payment_event_id != event.pk:  # committed: the order is executing, and the sweeper re-drives it
        raise ValueError(f"payment event {event.pk} is not order {order.pk}'s ({order.payment_event_id})")
    order.payment_event = event
    return order


# The event's task: the event, its buyer's customer at the PSP (if any) and its orders in the given states.
_EVENT_SQL = f"""
SELECT {_columns(_EVENT, _EVENT_FIELDS, "e")},
       (SELECT c."{_CUSTOMER.get_field("psp_customer_id").column}" FROM "{_CUSTOMER.db_table}" c
        WHERE c."{_CUSTOMER.get_field("client").column}" = e."{_EVENT.get_field("client").column}"
          AND c."{_CUSTOMER.get_field("buyer_reference").column}" = e."{_EVENT.get_field("buyer_reference").column}"),
       ARRAY(SELECT o."{_ORDER.pk.column}" FROM "{_ORDER.db_table}" o
             WHERE o."{_ORDER.get_field("payment_event").column}" = e."{_EVENT.pk.column}"
               AND o.state = ANY(%(states)s::text[])
             ORDER BY o."{_ORDER.pk.column}")
FROM "{_EVENT.db_table}" e WHERE e."{_EVENT.pk.column}" = %(id)s
"""


def event_with_orders(payment_event_id: str, *, states: list[str]) -> tuple[PaymentEvent, str, list[str]]:
    """``(event, the buyer's stored PSP customer or "", ids of its orders in states)``, read in one statement
    (the ORM's three queries, each compiled anew, were most of the event task's own statements)."""
    with connection.cursor() as cur:
        cur.execute(_EVENT_SQL, {"id": payment_event_id, "states": array_literal(states)})  # a list: 4x the CPU
        row = cur.fetchone()
    if row is None:
        raise PaymentEvent.DoesNotExist(f"payment event {payment_event_id} does not exist")
    n = len(_EVENT_FIELDS)
    return PaymentEvent.from_db(DEFAULT_DB_ALIAS, _EVENT_FIELDS, row[:n]), row[n] or "", list(row[n + 1])
