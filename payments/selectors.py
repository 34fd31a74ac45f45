"""Reads of payments. A client sees only its own objects."""
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.fields.json import KT
from django.utils import timezone

from core.models import ApiClient
from core.money import CURRENCY_EXPONENTS, format_money
from ledger import selectors as ledger_selectors
from payments.models import (
    OPEN_STATES,
    CheckoutSession,
    PaymentEvent,
    PaymentEventState,
    PaymentOrder,
    PaymentOrderState,
    Refund,
    RefundState,
    Seller,
    SettleableOrder,
    SuspectedDoubleCharge,
    WebhookEvent,
)
from wallet import selectors as wallet_selectors


def seller_list(*, client: ApiClient) -> QuerySet[Seller]:
    return Seller.objects.filter(client=client)


def seller_names(*, seller_ids: list[str]) -> dict[str, str]:
    """``{seller id: name}`` of the given sellers (any client's: the operators' console names them)."""
    return dict(Seller.objects.filter(pk__in=set(seller_ids)).values_list("id", "name"))


def seller_ids_named(*, name: str, limit: int = 200) -> list[str]:
    """Ids of the sellers whose name contains ``name`` (any client's: the operators' console searches by it)."""
    return list(Seller.objects.filter(name__icontains=name.strip()).values_list("id", flat=True)[:limit])


def payment_order_failure_codes() -> list[str]:
    """The failure codes orders carry, each once, sorted."""
    return list(PaymentOrder.objects.exclude(failure_code="").order_by("failure_code")
                .values_list("failure_code", flat=True).distinct())


def seller_get(*, client: ApiClient, seller_id: str) -> Seller | None:
    return Seller.objects.filter(client=client, pk=seller_id).first()


def payment_event_list(*, client: ApiClient) -> QuerySet[PaymentEvent]:
    return PaymentEvent.objects.filter(client=client).prefetch_related("orders")


def payment_event_get(*, client: ApiClient, payment_event_id: str) -> PaymentEvent | None:
    return payment_event_list(client=client).filter(pk=payment_event_id).first()


def payment_order_get(*, client: ApiClient, payment_order_id: str) -> PaymentOrder | None:
    return PaymentOrder.objects.filter(payment_event__client=client, pk=payment_order_id).first()


def payment_order_by_psp_reference(*, psp_references: list[str]) -> PaymentOrder | None:
    """The order the PSP knows by one of ``psp_references`` (a PaymentIntent or charge id), for another app
    reporting on it (a dispute). Any client's: the PSP's word is not scoped to a client."""
    references = [r for r in psp_references if r]
    if not references:
        return None
    return PaymentOrder.objects.filter(psp_reference__in=references).order_by("created_at", "id").first()


def webhook_events_unfinished(*, type_prefix: str, received_before: datetime, limit: int = 500) -> list[str]:
    """Ids of inbox events of a type (by prefix) still received or failed since before ``received_before``,
    oldest first: for the app that handles them to run again (``webhook_event_process``)."""
    return list(WebhookEvent.objects.filter(
        type__startswith=type_prefix, received_at__lt=received_before,
        status__in=[WebhookEvent.Status.RECEIVED, WebhookEvent.Status.FAILED],
    ).order_by("received_at").values_list("id", flat=True)[:limit])


def succeeded_order_ids() -> list[str]:
    return list(PaymentOrder.objects.filter(state=PaymentOrderState.SUCCEEDED).values_list("id", flat=True))


def order_totals_by_state() -> list[dict]:
    return list(
        PaymentOrder.objects.values("state", "currency")
        .annotate(count=Count("id"), amount=Sum("amount"))
        .order_by("state", "currency")
    )


@dataclass(frozen=True)
class SettledObject:
    """What reconciliation needs to know of one of our refunds."""

    kind: str  # "refund"
    id: str
    payment_order_id: str
    seller_id: str
    psp_reference: str
    amount: int  # minor units, positive
    currency: str
    state: str
    completed_at: datetime | None


def refunds_by_psp_reference(*, psp_references: list[str]) -> dict[str, SettledObject]:
    refunds = Refund.objects.filter(psp_reference__in=[r for r in psp_references if r]).select_related(
        "payment_order")
    return {
        r.psp_reference: SettledObject(kind="refund", id=r.id, payment_order_id=r.payment_order_id,
                                       seller_id=r.payment_order.seller_id, psp_reference=r.psp_reference,
                                       amount=r.amount, currency=r.currency, state=r.state,
                                       completed_at=r.completed_at)
        for r in refunds
    }


def succeeded_refund_ids() -> list[str]:
    return list(Refund.objects.filter(state=RefundState.SUCCEEDED).values_list("id", flat=True))


def orders_with_refunds_above_capture() -> list[tuple[str, int, int]]:
    """Orders whose succeeded refunds add up to more than they captured (never, if the DB holds)."""
    rows = (PaymentOrder.objects.filter(refunds__state=RefundState.SUCCEEDED)
            .annotate(refunded=Sum("refunds__amount")).filter(refunded__gt=F("amount"))
            .values_list("id", "amount", "refunded"))
    return list(rows)


SETTLEABLE_ORDER_VIEW = "payments_settleable_order"


def settleable_order_view() -> str:
    """Name of the read-only SQL view (id, seller_id, psp_reference, amount, currency, state,
    completed_at) for set-based joins by reconciliation; the selectors above answer per object."""
    return SETTLEABLE_ORDER_VIEW


def settleable_orders() -> QuerySet[SettleableOrder]:
    """Payment orders as reconciliation reads them with the ORM (``SettleableOrder``: the view above)."""
    return SettleableOrder.objects.all()


#: ``SettleableOrder.state`` values whose outcome the PSP may still decide, and the failed one: where
#: reconciliation's break workbench looks for an order the PSP captured after all.
OPEN_ORDER_STATES = tuple(str(state) for state in OPEN_STATES)
FAILED_ORDER_STATE = str(PaymentOrderState.FAILED)


def order_volumes_since(*, since: datetime) -> list[dict]:
    """Orders created since ``since``: count and amount per state and currency (the dashboard)."""
    return list(
        PaymentOrder.objects.filter(created_at__gte=since).values("state", "currency")
        .annotate(count=Count("id"), amount=Sum("amount")).order_by("currency", "state")
    )


def attention_counts() -> dict[str, int]:
    """What operators should look at: dead letters, orders waiting on the PSP, failed webhooks,
    checkouts partially succeeded in the last 24 hours."""
    states = dict(
        PaymentOrder.objects.filter(state__in=[PaymentOrderState.DEAD_LETTER, PaymentOrderState.UNKNOWN,
                                               PaymentOrderState.PENDING])
        .values_list("state").annotate(n=Count("id"))
    )
    return {
        "dead_letter": states.get(PaymentOrderState.DEAD_LETTER, 0),
        "unknown": states.get(PaymentOrderState.UNKNOWN, 0),
        "pending": states.get(PaymentOrderState.PENDING, 0),
        "failed_webhooks": WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).count(),
        "dead_letter_refunds": Refund.objects.filter(state=RefundState.DEAD_LETTER).count(),
        "suspected_double_charges": SuspectedDoubleCharge.objects.filter(
            state=SuspectedDoubleCharge.State.OPEN).count(),
        # Checkouts whose buyer paid some sellers and not others (only under CHECKOUT_ON_PARTIAL_FAILURE=keep).
        "partially_succeeded_checkouts": PaymentEvent.objects.filter(
            state=PaymentEventState.PARTIALLY_SUCCEEDED, completed_at__gte=timezone.now() - timedelta(hours=24),
        ).count(),
    }


def refund_get(*, client: ApiClient, refund_id: str) -> Refund | None:
    """One of this client's refunds, or ``None``."""
    return Refund.objects.filter(payment_order__payment_event__client=client, pk=refund_id).first()


def refund_list(*, client: ApiClient, payment_order_id: str) -> QuerySet[Refund]:
    """A payment order's refunds, when the order is this client's (empty otherwise)."""
    return Refund.objects.filter(payment_order__payment_event__client=client, payment_order_id=payment_order_id)


# --- The hosted payment page (checkout sessions) -----------------------------------------------
# What a buyer is told about an order that did not go through: the PSP's own words for a card
# problem (written for buyers), ours for the rest; never an internal error.
_BUYER_MESSAGES = {
    "payment_intent_authentication_failure": "Your bank could not confirm that it was you (3-D Secure failed).",
    "authentication_expired": "The confirmation with your bank was not completed in time.",
    "authentication_required": "Your bank asks for a confirmation that could not be made here.",
}
_STATE_LABELS = {
    PaymentOrderState.SUCCEEDED: "Paid",
    PaymentOrderState.FAILED: "Not paid",
    PaymentOrderState.REQUIRES_ACTION: "Waiting for your bank's confirmation",
}


def _buyer_message(order: PaymentOrder) -> str:
    if order.state != PaymentOrderState.FAILED:
        return ""
    if order.failure_code in _BUYER_MESSAGES:
        return _BUYER_MESSAGES[order.failure_code]
    if order.failure_message.startswith("Your card"):
        return order.failure_message
    return "The payment could not be completed."


def _totals_display(amounts: list[tuple[int, str]]) -> str:
    totals: dict[str, int] = {}
    for amount, currency in amounts:
        totals[currency] = totals.get(currency, 0) + amount
    return " + ".join(format_money(amount, currency) for currency, amount in totals.items())


@dataclass(frozen=True)
class CheckoutItemView:
    name: str
    quantity: int
    total_display: str


@dataclass(frozen=True)
class CheckoutOrderView:
    seller_id: str
    seller_name: str
    amount: int
    currency: str
    amount_display: str
    items: list[CheckoutItemView]
    state: str  # "open" before the buyer pays, then the payment order's state
    outcome: str  # "succeeded", "failed" or "processing"
    state_label: str
    message: str  # why it was not paid, for the buyer
    next_action_url: str


@dataclass(frozen=True)
class CheckoutSessionView:
    session: CheckoutSession
    status: str  # open, expired, processing, succeeded, partially_succeeded, failed
    orders: list[CheckoutOrderView]

    @property
    def started(self) -> bool:
        return self.session.payment_event_id is not None

    @property
    def decided(self) -> bool:
        return self.status in ("succeeded", "partially_succeeded", "failed")

    @property
    def total_display(self) -> str:
        return _totals_display([(o.amount, o.currency) for o in self.orders])

    @property
    def paid_display(self) -> str:
        return _totals_display([(o.amount, o.currency) for o in self.orders if o.outcome == "succeeded"])

    @property
    def back_url(self) -> str:
        """Back to the shop: its success page if anything was paid, else its cancel page."""
        paid = self.status in ("succeeded", "partially_succeeded")
        return (self.session.success_url if paid else self.session.cancel_url).replace(
            "{CHECKOUT_SESSION_ID}", self.session.id)

    @property
    def next_action_url(self) -> str:
        return next((o.next_action_url for o in self.orders if o.next_action_url), "")

    @property
    def headline(self) -> str:
        return {"succeeded": "Payment complete", "partially_succeeded": "Part of your order was paid",
                "failed": "Payment failed", "expired": "This payment page has expired"}.get(
            self.status, "Payment in progress")

    @property
    def summary(self) -> str:
        if self.status == "succeeded":
            return "Every seller was paid."
        if self.status == "partially_succeeded":
            return ("Some sellers were paid and some were not. You were charged only for the sellers marked "
                    "Paid; the others were not charged.")
        if self.status == "failed":
            return "No seller was paid and nothing was charged to your card."
        if self.status == "expired":
            return "Nothing was charged. Return to the shop to start again."
        return "Your payment is in progress."

    @property
    def message(self) -> str:
        if self.status == "open":
            return ""
        if self.next_action_url:
            return "Your bank asks you to confirm this payment."
        waiting = sum(o.outcome == "processing" for o in self.orders)
        return self.summary if not waiting else f"Paying {len(self.orders)} seller(s)… {waiting} still in progress."


def checkout_session_get(*, client: ApiClient, checkout_session_id: str) -> CheckoutSession | None:
    return CheckoutSession.objects.filter(client=client, pk=checkout_session_id).select_related("payment_event").first()


def checkout_session_view(*, checkout_session_id: str) -> CheckoutSessionView | None:
    """The hosted page's view of a session (the buyer's, so not scoped to an API client: the
    session's id is the capability): each seller's items and amounts and, once paid, its order."""
    session = CheckoutSession.objects.filter(pk=checkout_session_id).select_related("payment_event").first()
    if session is None:
        return None
    names = dict(Seller.objects.filter(pk__in=[o["seller"] for o in session.orders]).values_list("id", "name"))
    placed = {}
    if session.payment_event_id:
        placed = {o.seller_id: o for o in PaymentOrder.objects.filter(payment_event_id=session.payment_event_id)}
    orders = []
    for spec in session.orders:
        order = placed.get(spec["seller"])
        state = order.state if order else "open"
        outcome = (order.state if order and order.is_terminal else "processing") if order else "open"
        orders.append(CheckoutOrderView(
            seller_id=spec["seller"], seller_name=names.get(spec["seller"], spec["seller"]), amount=spec["amount"],
            currency=spec["currency"], amount_display=format_money(spec["amount"], spec["currency"]),
            items=[CheckoutItemView(i["name"], i["quantity"],
                                    format_money(i["quantity"] * i["amount"], spec["currency"]))
                   for i in spec.get("items") or []],
            state=state, outcome=outcome,
            state_label=_STATE_LABELS.get(state, "Processing…") if order else "",
            message=_buyer_message(order) if order else "",
            next_action_url=order.next_action_url if order and state == PaymentOrderState.REQUIRES_ACTION else ""))
    if session.payment_event_id:
        status = session.payment_event.state
    else:
        status = "expired" if session.expires_at <= timezone.now() else "open"
    return CheckoutSessionView(session=session, status=status, orders=orders)


# The operators' console: search that finds a payment, and a payment's timeline.

_OUR_ID = re.compile(r"^(ord|pe|rf|sel)_[0-9a-z]+$", re.IGNORECASE)
_AMOUNT = re.compile(r"^\d{1,3}(,\d{3})*(\.\d+)?$|^\d+(\.\d+)?$")


def _our_id(term: str) -> str:
    """Our ids as stored (``ord_01J…``: a lowercase prefix, an uppercase ULID), however they were typed."""
    if not _OUR_ID.match(term):
        return term
    prefix, _, rest = term.partition("_")
    return f"{prefix.lower()}_{rest.upper()}"


def amount_search_q(term: str) -> Q | None:
    """An amount typed as major units (``49.99``, ``1,234.50``: per currency exponent) or, when whole, also
    as minor units (``4999``): the orders of any currency whose amount it can be. ``None``: not an amount."""
    if not _AMOUNT.match(term):
        return None
    value = Decimal(term.replace(",", ""))
    by_exponent: dict[int, list[str]] = {}
    for code, exponent in CURRENCY_EXPONENTS.items():
        by_exponent.setdefault(exponent, []).append(code)
    q = Q(amount=int(value)) if value == value.to_integral_value() else Q(pk__in=[])
    for exponent, codes in sorted(by_exponent.items()):
        minor = value.scaleb(exponent)
        if minor == minor.to_integral_value():
            q |= Q(amount=int(minor), currency__in=codes)
    return q


def _amount_bound_q(value: Decimal, lookup: str) -> Q:
    """Orders whose amount, in major units of their own currency, is ``lookup`` (gte/lte) ``value``."""
    by_exponent: dict[int, list[str]] = {}
    for code, exponent in CURRENCY_EXPONENTS.items():
        by_exponent.setdefault(exponent, []).append(code)
    q = Q(pk__in=[])
    for exponent, codes in sorted(by_exponent.items()):
        minor = value.scaleb(exponent)
        bound = int(minor.to_integral_value(rounding=ROUND_CEILING if lookup == "gte" else ROUND_FLOOR))
        q |= Q(**{f"amount__{lookup}": bound, "currency__in": codes})
    return q


def payment_orders_in_amount_range(*, orders: QuerySet[PaymentOrder], low: Decimal | None,
                                   high: Decimal | None) -> QuerySet[PaymentOrder]:
    """``orders`` whose amount lies between ``low`` and ``high`` (inclusive, either may be ``None``), both
    read in major units of each order's currency: ``10`` is 10.00 USD, 10 JPY and 10.000 KWD."""
    if low is not None:
        orders = orders.filter(_amount_bound_q(low, "gte"))
    if high is not None:
        orders = orders.filter(_amount_bound_q(high, "lte"))
    return orders


def payment_orders_search(*, orders: QuerySet[PaymentOrder], query: str, psp_references: list[str] = (),
                          object_ids: list[str] = ()) -> QuerySet[PaymentOrder]:
    """``orders`` found by what an operator knows of a payment, typed in one box: our ids (order, checkout,
    refund, seller), the PSP's (``pi_``, ``re_``, and ``ch_`` through the webhooks that carried the charge),
    the buyer's reference or email, the seller's name or reference, an amount (``49.99`` or minor units).
    ``psp_references`` / ``object_ids``: what a settlement reference pointed to (reconciliation finds them;
    payments does not read reconciliation). Forward joins and EXISTS only: each order at most once."""
    term = query.strip()
    if not term:
        return orders
    our_id = _our_id(term)
    refund = Refund.objects.filter(payment_order=OuterRef("pk"))
    charge_intents = (WebhookEvent.objects.filter(object_id=term)
                      .annotate(intent=KT("payload__data__object__payment_intent")).values("intent"))
    q = (Q(pk=our_id) | Q(payment_event_id=our_id) | Q(seller_id=our_id)
         | Q(psp_reference=term) | Q(psp_reference__in=charge_intents)
         | Exists(refund.filter(Q(pk=our_id) | Q(psp_reference=term))))
    if not _OUR_ID.match(term) and not term.startswith(("pi_", "re_", "ch_")):
        q |= (Q(payment_event__buyer_reference__iexact=term) | Q(payment_event__buyer_email__icontains=term)
              | Q(seller__name__icontains=term) | Q(seller__external_reference__iexact=term)
              | Q(payment_event__idempotency_key=term))
    amount = amount_search_q(term)
    if amount is not None:
        q |= amount
    if psp_references:
        q |= Q(psp_reference__in=list(psp_references)) | Exists(refund.filter(psp_reference__in=list(psp_references)))
    if object_ids:
        q |= Q(pk__in=list(object_ids)) | Exists(refund.filter(pk__in=list(object_ids)))
    return orders.filter(q)


def payment_events_search(*, events: QuerySet[PaymentEvent], query: str, psp_references: list[str] = (),
                          object_ids: list[str] = ()) -> QuerySet[PaymentEvent]:
    """``events`` holding an order ``payment_orders_search`` finds, or whose own id, buyer or idempotency key
    it is. EXISTS, never a join to the orders: each event once, and its order count is not multiplied."""
    term = query.strip()
    if not term:
        return events
    matching_orders = payment_orders_search(orders=PaymentOrder.objects.filter(payment_event=OuterRef("pk")),
                                            query=term, psp_references=psp_references, object_ids=object_ids)
    return events.filter(Q(pk=_our_id(term)) | Q(buyer_reference__iexact=term) | Q(buyer_email__icontains=term)
                         | Q(idempotency_key=term) | Exists(matching_orders))


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
