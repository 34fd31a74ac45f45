"""A checkout's own outcome: the payment event's state, derived from its orders.

``processing`` until every order is decided (succeeded or failed), then ``succeeded`` (all
succeeded), ``failed`` (none did) or ``partially_succeeded``. A dead-lettered order is *not*
decided: the PSP may yet have charged it and an operator's replay will decide it through
``payment_order_apply_result``, so its event stays ``processing`` until then (it shows on the
dashboard as a dead letter meanwhile). With ``CHECKOUT_ON_PARTIAL_FAILURE = "refund_all"`` a
partial outcome is undone instead: the succeeded orders are refunded in full through the normal
refund path (``refund_create``, its PSP call enqueued on commit, posted when the PSP answers)
and the event ends ``failed`` with its ``failure_reason``.

Existing events were given their state by migration 0009 (from their orders at the time, no
refunds made retroactively).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import cache

from django.conf import settings
from django.db import connection

from core.db import StatementPart, parts_split
from core.transitions import TransitionWrite, transition_apply
from payments.models import PaymentEvent, PaymentEventState, PaymentOrder, PaymentOrderState
from payments.services.merchant_events import OUTBOX_CTE

logger = logging.getLogger(__name__)

_COUNT_CTE = (f"ev AS (UPDATE {PaymentEvent._meta.db_table}"
              " SET orders_succeeded = orders_succeeded + %s, orders_failed = orders_failed + %s"
              " WHERE id = %s{written} RETURNING id, client_id, state, orders_succeeded, orders_failed,"
              f" (SELECT count(*) FROM {PaymentOrder._meta.db_table} WHERE payment_event_id = %s) AS total),"
              f"{OUTBOX_CTE}")
_COUNT_SQL = f"WITH {_COUNT_CTE.format(written='')} SELECT state, orders_succeeded, orders_failed, total FROM ev"
#: The condition, in the statement of an order's decision, that the decision was written: the count and the parts
#: written with it (``payment_event_order_decided(parts=...)``) put it in their own WHERE.
DECISION_WRITTEN = "EXISTS (SELECT 1 FROM moved_audit)"
# The order's decision (``{transition}``: its CTEs moved and moved_audit), the count and the parts' CTEs and
# columns (``{parts}``, ``{columns}``: each after a comma, or nothing) in one statement: the event's UPDATE runs
# only once the decision's audit row is written (its condition reads it first), and the one row answered says
# whether it was.
_DECIDE_AND_COUNT_SQL = ("WITH {transition}, "
                         + _COUNT_CTE.format(written=f" AND {DECISION_WRITTEN}").replace("{", "{{").replace("}", "}}")
                         + "{parts} SELECT (SELECT count(*) FROM moved_audit), ev.state, ev.orders_succeeded,"
                           " ev.orders_failed, ev.total{columns} FROM (SELECT 1) AS one LEFT JOIN ev ON true")


@cache
def _decide_and_count_sql(transition_ctes: str, parts_ctes: tuple[str, ...] = (), parts_columns: tuple[str, ...] = ()
                          ) -> str:
    return _DECIDE_AND_COUNT_SQL.format(transition=transition_ctes, parts="".join(f", {c}" for c in parts_ctes),
                                        columns="".join(f", {c}" for c in parts_columns))


KEEP = "keep"
REFUND_ALL = "refund_all"
REFUND_ALL_ACTOR = "system:refund_all"


def payment_event_order_decided(*, order: PaymentOrder, actor: str, transition: TransitionWrite | None = None,
                                parts: Sequence[StatementPart] = (),
                                then: Callable[[list[tuple]], None] | None = None) -> str:
    """Count ``order``'s decision on its event and, if it was the last undecided order, decide
    the event. Called by ``payment_order_apply_result`` inside the transaction (and under the
    order's row lock) that has just made the order succeeded or failed, which happens once per
    order. Returns the event's state.

    ``transition``: the order's own decision, made in memory and not yet written (``transition_prepare``):
    then it is written by the same statement as the count, first (the order's row lock before the event's:
    the count's UPDATE waits on the decision's audit row), and the count only if it was written; if it was
    not, nothing is, and ``ConcurrentTransition`` is raised (as ``transition_apply`` would). ``parts``: more
    writes of the same statement, after the count, each under ``DECISION_WRITTEN`` (a capture's posting and
    credit, ``postings.capture_parts``); their columns are handed to ``then`` once the decision is known written.

    Two statements at most: an UPDATE of the event's counters (every decided order) and, for the
    order that decides the event, one statement saving the event's transition with its audit row.

    Why a counter UPDATE rather than re-reading the siblings' states: under READ COMMITTED two
    sibling orders deciding in two concurrent transactions would each read the other as still
    undecided (its change not yet committed), and neither would decide the event; a sub-select in
    an UPDATE's WHERE reads the statement's snapshot, taken before any lock wait, so it has the same
    blind spot. ``UPDATE … SET orders_failed = orders_failed + 1 … RETURNING`` takes the event's row
    lock and, if a sibling's transaction held it, waits for that to commit and then applies the
    increment to (and returns) the row as that sibling left it. So the deciders of one event queue
    on its row, each sees the counts of all those before it, and exactly one sees every order
    decided. The order total comes from a sub-select, which is safe with any snapshot: an event's
    orders are created with it, in one transaction, and never added or removed. Lock order is
    always the order, then its event, then (refund_all only, once every order is decided, so no
    sibling's decider can be waiting for the event) the sibling orders: no deadlock.
    """
    state, n_succeeded, n_failed, total = _counted(order, transition, parts, then)
    if state != PaymentEventState.PROCESSING or n_succeeded + n_failed < total:
        return state
    # Loaded with the order (its claim or lock_order) or by its event's task; still processing, as the row under our
    # lock just said (the transition's own guard is the state it was read in).
    event = order.payment_event
    if n_failed == 0:
        transition_apply(event, event.succeed, actor=actor, reason=f"all {total} orders succeeded")
    elif n_succeeded == 0:
        reason = f"all {total} orders failed" if total > 1 else "the order failed"
        transition_apply(event, event.fail, actor=actor, reason=reason, failure_reason=reason)
    elif settings.CHECKOUT_ON_PARTIAL_FAILURE == REFUND_ALL:
        refunded = _refund_succeeded_orders(event)
        reason = (f"{n_failed} of {total} orders failed; CHECKOUT_ON_PARTIAL_FAILURE=refund_all: the "
                  f"{n_succeeded} succeeded refunded in full ({', '.join(refunded) or 'nothing left to refund'})")
        transition_apply(event, event.fail, actor=actor, reason=reason, failure_reason=reason)
    else:
        transition_apply(event, event.partially_succeed, actor=actor,
                         reason=f"{n_succeeded} of {total} orders succeeded, {n_failed} failed")
    logger.info("event=payment_event_decided payment_event=%s state=%s", event.id, event.state)


def _counted(order: PaymentOrder, transition: TransitionWrite | None, parts: Sequence[StatementPart],
             then: Callable[[list[tuple]], None] | None) -> tuple[str, int, int, int]:
    """``payment_event_order_decided``'s statement: the count (with the decision and ``parts``, if given);
    the event's state, its counts and its orders' total as the count left them."""
    succeeded = order.state == PaymentOrderState.SUCCEEDED
    params = [int(succeeded), int(not succeeded), order.payment_event_id, order.payment_event_id,
              f"payment_order.{order.state}", order.id]
    with connection.cursor() as cursor:
        # The same statement writes payments' outbox rows for the merchant's webhooks (merchant_events):
        # payment_order.<state>, and checkout.completed when this order is the event's last undecided one.
        if transition is None:
            cursor.execute(_COUNT_SQL, params)
            state, n_succeeded, n_failed, total = cursor.fetchone()
        else:
            cursor.execute(_decide_and_count_sql(transition.ctes, tuple(p.ctes for p in parts),
                                                 tuple(p.columns for p in parts)),
                           [*transition.params, *params, *(value for part in parts for value in part.params)])
            row = cursor.fetchone()
            written, state, n_succeeded, n_failed, total = row[:5]
            transition.finish(written=bool(written))
            if then is not None:
                then(parts_split(row[5:], parts))
    return state, n_succeeded, n_failed, total


def _refund_succeeded_orders(event: PaymentEvent) -> list[str]:
    """Refund what is left of each succeeded order of ``event`` (refund_all). Runs once per event:
    only for the transition out of ``processing``, under the event's row lock. An order the
    merchant already refunded in full has nothing left and is skipped."""
    from payments.exceptions import RefundTooLarge
    from payments.services.refunds import refund_create

    refunded = []
    order_ids = (PaymentOrder.objects.filter(payment_event=event, state=PaymentOrderState.SUCCEEDED)
                 .order_by("id").values_list("id", flat=True))
    for order_id in order_ids:
        try:
            refund = refund_create(client=event.client, payment_order_id=order_id, amount=None,
                                   reason=f"checkout {event.id} partially failed (refund_all)",
                                   actor=REFUND_ALL_ACTOR)
        except RefundTooLarge:
            continue
        refunded.append(refund.id)
    logger.warning("event=payment_event_refund_all payment_event=%s refunds=%s", event.id, ",".join(refunded))
    return refunded
