"""The operators' console's timeline: everything that happened to a payment, in order."""
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from core.money import format_money
from ledger import selectors as ledger_selectors
from payments.models import (
    PaymentEvent,
    PaymentOrder,
    PaymentOrderState,
    WebhookEvent,
)
from wallet import selectors as wallet_selectors


@dataclass(frozen=True)
class TimelineRow:
    """One thing that happened to a payment, as the operators' timeline shows it.

    ``kind``: created, transition, psp_request (the order sent to the PSP), psp_call (a PSP call's answer),
    refund, refund_transition, webhook, ledger, wallet, settlement, break. ``link``: ``(admin model label,
    object id)`` of the row's own page, or ``(label, "?q=…")`` for a search of that list; resolved to a URL by
    the admin."""

    at: datetime
    kind: str
    title: str
    subject: str = ""  # the order or refund it is about
    actor: str = ""
    detail: str = ""
    amount: int | None = None
    currency: str = ""
    link: tuple[str, str] | None = None
    entries: tuple[tuple[str, str, int], ...] = ()
    facts: tuple[tuple[str, str], ...] = ()  # shown as a small table (a PSP call's key, status, latency...)

    @property
    def money(self) -> str:
        return format_money(self.amount, self.currency) if self.amount is not None else ""

    @property
    def kind_label(self) -> str:
        return self.kind.replace("_", " ")

    @property
    def entry_lines(self) -> list[tuple[str, str, str]]:
        """Each ledger entry as ``("Dr"/"Cr", account, formatted amount)``."""
        return [("Dr" if amount > 0 else "Cr", code, format_money(abs(amount), currency))
                for code, currency, amount in self.entries]


def _transition_row(transition, subject: str, *, refund: bool) -> TimelineRow:
    """An audit row as a timeline row. One that records a PSP call's answer (``detail["psp_call"]``, written by
    the executor) is that call's row: attempt, status, latency, idempotency key, error and the PSP's reference."""
    call = (getattr(transition, "detail", None) or {}).get("psp_call")
    move = f"{transition.from_state} → {transition.to_state}"
    if call:
        latency = f" in {call['latency_ms']} ms" if call.get("latency_ms") is not None else ""
        facts = [("State", move), ("Idempotency key", call.get("idempotency_key", "")),
                 ("PSP reference", call.get("psp_reference") or "-"), ("Error", call.get("error") or "-"),
                 ("Latency", f"{call['latency_ms']} ms" if call.get("latency_ms") is not None else "-")]
        name = "PSP asked" if call.get("kind") == "lookup" else f"PSP call {call.get('attempt', '?')}"
        status = str(call.get("status", "?")).removeprefix("lookup: ")
        return TimelineRow(at=transition.created_at, kind="psp_call", subject=subject, actor=transition.actor,
                           title=f"{name}: {status}{latency}", detail=transition.reason, facts=tuple(facts))
    to_psp = not refund and transition.to_state == PaymentOrderState.EXECUTING
    kind = "psp_request" if to_psp else ("refund_transition" if refund else "transition")
    title = move + (" (sent to the PSP)" if to_psp else "")
    return TimelineRow(at=transition.created_at, kind=kind, title=title, subject=subject, actor=transition.actor,
                       detail=transition.reason)


def payment_orders_timeline(*, payment_order_ids: list[str]) -> list[TimelineRow]:
    """Everything payments, the ledger and the wallets hold about these orders, oldest first: each order's
    creation and state changes (a change to ``executing`` is a call to the PSP), its refunds and theirs, the
    webhooks about it or them, the ledger postings and the wallet movements. A fixed number of statements,
    however many orders (the settlement side is reconciliation's to add)."""
    orders = list(PaymentOrder.objects.filter(pk__in=payment_order_ids).select_related("seller")
                  .prefetch_related("transitions", "refunds__transitions"))
    rows: list[TimelineRow] = []
    references, object_ids = [], []
    for order in orders:
        rows.append(TimelineRow(at=order.created_at, kind="created", title=f"Order created for {order.seller.name}",
                                subject=order.id, amount=order.amount, currency=order.currency,
                                detail=f"seller {order.seller_id}, PSP idempotency key {order.psp_idempotency_key}"))
        rows += [_transition_row(t, order.id, refund=False) for t in order.transitions.all()]
        references.append(order.psp_reference)
        object_ids.append(order.id)
        for refund in order.refunds.all():
            rows.append(TimelineRow(at=refund.created_at, kind="refund", title=f"Refund {refund.id} requested",
                                    subject=order.id, amount=refund.amount, currency=refund.currency,
                                    detail=" · ".join(filter(None, [refund.reason, f"now {refund.state}",
                                                                   refund.psp_reference, refund.failure_code])),
                                    link=("payments.refund", refund.id)))
            rows += [_transition_row(t, refund.id, refund=True) for t in refund.transitions.all()]
            references.append(refund.psp_reference)
            object_ids.append(refund.id)
    references = [r for r in references if r]
    webhooks = WebhookEvent.objects.filter(
        Q(object_id__in=references) | Q(payload__data__object__payment_intent__in=references)
        | Q(payload__data__object__metadata__payment_order_id__in=object_ids)
        | Q(payload__data__object__metadata__refund_id__in=object_ids)).order_by("received_at")
    for event in webhooks.only("id", "type", "status", "object_id", "deliveries", "attempts", "received_at",
                               "processed_at", "last_error"):
        detail = f"{event.object_id} · {event.status} · delivered {event.deliveries}×"
        if event.last_error:
            detail += f" · last error: {event.last_error.strip().splitlines()[-1][:200]}"
        rows.append(TimelineRow(at=event.received_at, kind="webhook", title=f"Webhook {event.type}",
                                actor="psp", detail=detail, link=("payments.webhookevent", event.id)))
    postings = ledger_selectors.postings_by_reference(references=object_ids)
    for posting in postings:
        rows.append(TimelineRow(at=posting.occurred_at, kind="ledger", title=posting.description,
                                subject=posting.reference, detail=posting.idempotency_key, entries=posting.entries,
                                link=("ledger.ledgertransaction", str(posting.id))))
    currencies = {o.id: o.currency for o in orders} | {r.id: o.currency for o in orders for r in o.refunds.all()}
    movements = wallet_selectors.movement_amounts_by_key(keys=[p.idempotency_key for p in postings])
    for posting in postings:
        if posting.idempotency_key in movements:
            owner, amount = movements[posting.idempotency_key]
            rows.append(TimelineRow(at=posting.occurred_at, kind="wallet", title=f"Wallet of {owner}",
                                    subject=posting.reference, amount=amount,
                                    currency=currencies.get(posting.reference, ""), detail=posting.idempotency_key,
                                    link=("wallet.walletmovement", f"?q={posting.idempotency_key}")))
    return timeline_sorted(rows)


_KIND_ORDER = {kind: n for n, kind in enumerate(
    ["created", "psp_request", "psp_call", "transition", "refund", "refund_transition", "webhook", "ledger", "wallet",
     "settlement", "break"])}


def timeline_sorted(rows: list[TimelineRow]) -> list[TimelineRow]:
    """Oldest first; rows of the same instant in the order things happen (a state change, then its posting,
    then the wallet)."""
    return sorted(rows, key=lambda r: (r.at, _KIND_ORDER.get(r.kind, 99)))


def payment_event_timeline(*, payment_event_id: str) -> tuple[PaymentEvent | None, list[TimelineRow]]:
    """A checkout and its story: its creation and state changes, then each of its orders' (above)."""
    event = (PaymentEvent.objects.filter(pk=payment_event_id).prefetch_related("transitions", "orders").first())
    if event is None:
        return None, []
    rows = [TimelineRow(at=event.created_at, kind="created", title=f"Checkout by {event.buyer_reference}",
                        subject=event.id, detail=f"{event.buyer_email} · idempotency key {event.idempotency_key}")]
    rows += [TimelineRow(at=t.created_at, kind="transition", title=f"{t.from_state} → {t.to_state}", subject=event.id,
                         actor=t.actor, detail=t.reason) for t in event.transitions.all()]
    rows += payment_orders_timeline(payment_order_ids=[o.id for o in event.orders.all()])
    return event, timeline_sorted(rows)
