"""Sellers, payment events (one checkout), payment orders (one per seller), their audit rows, the
buyer's customer at the PSP and the hosted payment page's session."""
from django.db import models
from django.utils import timezone
from django_fsm import FSMField, transition

from core.ids import IdFactory
from core.models import ApiClient, ConcurrentTransitionMixin, TransitionAudit


class Seller(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"

    id = models.CharField(primary_key=True, max_length=40, default=IdFactory("sel"), editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="sellers")
    name = models.CharField(max_length=200)
    external_reference = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "external_reference"],
                condition=~models.Q(external_reference=""),
                name="seller_external_reference_unique_per_client",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class PaymentEventState(models.TextChoices):
    PROCESSING = "processing", "processing (some order is not decided yet)"
    SUCCEEDED = "succeeded", "succeeded (every order succeeded)"
    PARTIALLY_SUCCEEDED = "partially_succeeded", "partially succeeded (some orders succeeded, some failed)"
    FAILED = "failed", "failed (no order succeeded, or the succeeded ones were refunded)"


class PaymentEvent(ConcurrentTransitionMixin, models.Model):
    """One buyer's checkout. Holds no card data: only the PSP's payment-method token.

    Its ``state`` is derived from its orders (``payments.services.checkout_outcome``): ``processing``
    until every order is succeeded or failed (a dead-lettered order is not decided: an operator's
    replay still decides it), then ``succeeded``, ``partially_succeeded`` or ``failed``. Decided in
    the transaction of the order transition that decides it; never changes afterwards.
    ``orders_succeeded`` / ``orders_failed`` count the decided orders, kept under the event's row
    lock by that same transaction (how concurrent siblings decide it exactly once).
    """

    id = models.CharField(primary_key=True, max_length=40, default=IdFactory("pe"), editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="payment_events", db_index=False)
    buyer_reference = models.CharField(max_length=100)
    buyer_email = models.EmailField(blank=True)
    payment_method = models.CharField(max_length=100, help_text="The PSP's payment-method token.")
    psp_customer = models.CharField(max_length=100, blank=True,
                                    help_text="The buyer's customer at the PSP, when the token was attached to it.")
    psp_payment_method = models.CharField(
        max_length=100, blank=True,
        help_text="What each order charges: the token itself for one order; for several, the token attached "
                  "to the buyer's PSP customer (an unattached token pays one PaymentIntent only). Blank until then.")
    idempotency_key = models.CharField(max_length=255)
    # The buyer is present (a hosted page, or a storefront that sends them through 3-D Secure): each
    # order is confirmed on-session and may wait for the buyer's authentication. Blank: off-session.
    psp_return_url = models.CharField(
        max_length=2048, blank=True,
        help_text="Ours (/pay/return/<id>): where the PSP sends the buyer back after 3-D Secure. Blank: the buyer "
                  "is not present, orders are confirmed off-session and a card that insists on 3-D Secure fails.")
    return_url = models.CharField(max_length=2048, blank=True,
                                  help_text="Where the buyer goes once back from 3-D Secure (the storefront's page, "
                                            "or our hosted payment page).")
    created_at = models.DateTimeField(auto_now_add=True)
    TRANSITION_FIELDS = ("state", "completed_at", "failure_reason")  # core.transitions

    state = FSMField(default=PaymentEventState.PROCESSING, choices=PaymentEventState.choices, protected=True)
    completed_at = models.DateTimeField(null=True, blank=True, db_index=True,
                                        help_text="When every order was decided (and the event with them).")
    failure_reason = models.CharField(max_length=500, blank=True, help_text="Why the event failed.")
    orders_succeeded = models.PositiveIntegerField(default=0, help_text="Orders succeeded so far.")
    orders_failed = models.PositiveIntegerField(default=0, help_text="Orders failed so far.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["client"], name="payment_event_client"),
                   models.Index(fields=["state"], name="payment_event_state")]

    def __str__(self) -> str:
        return self.id

    @property
    def order_list(self) -> list["PaymentOrder"]:
        """Its orders: as created with it, when it was just created (no query), else as stored."""
        created = getattr(self, "_created_orders", None)
        return created if created is not None else list(self.orders.all())

    # Transition methods only change fields; payments.services.checkout_outcome saves them (a
    # conditional UPDATE on state = processing) with the audit row.
    @transition(field=state, source=PaymentEventState.PROCESSING, target=PaymentEventState.SUCCEEDED)
    def succeed(self) -> None:
        self.completed_at = timezone.now()

    @transition(field=state, source=PaymentEventState.PROCESSING, target=PaymentEventState.PARTIALLY_SUCCEEDED)
    def partially_succeed(self) -> None:
        self.completed_at = timezone.now()

    @transition(field=state, source=PaymentEventState.PROCESSING, target=PaymentEventState.FAILED)
    def fail(self, failure_reason: str) -> None:
        self.failure_reason = failure_reason[:500]
        self.completed_at = timezone.now()


class PaymentOrderState(models.TextChoices):
    NOT_STARTED = "not_started"
    EXECUTING = "executing"
    PENDING = "pending", "pending (the PSP is still processing)"
    UNKNOWN = "unknown", "unknown (no answer from the PSP; the janitor will ask)"
    REQUIRES_ACTION = "requires_action", "requires action (the buyer is asked for 3-D Secure)"
    DEAD_LETTER = "dead_letter", "dead letter (retries exhausted; an operator decides)"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TERMINAL_STATES = (PaymentOrderState.SUCCEEDED, PaymentOrderState.FAILED)
# States from which the PSP's final word is still accepted (a webhook, the janitor, a retry).
OPEN_STATES = [PaymentOrderState.EXECUTING, PaymentOrderState.PENDING, PaymentOrderState.UNKNOWN,
               PaymentOrderState.DEAD_LETTER, PaymentOrderState.REQUIRES_ACTION]


class PaymentOrder(ConcurrentTransitionMixin, models.Model):
    """One seller's part of a checkout, executed against the PSP.

    Transition methods only change fields; ``payments.services`` locks the row, checks,
    transitions, saves, writes the audit row and moves money in one transaction.
    """

    id = models.CharField(primary_key=True, max_length=40, default=IdFactory("ord"), editable=False)
    # Looked up through payment_order_one_per_seller (payment_event, seller), which leads with it.
    payment_event = models.ForeignKey(PaymentEvent, on_delete=models.PROTECT, related_name="orders", db_index=False)
    seller = models.ForeignKey(Seller, on_delete=models.PROTECT, related_name="payment_orders", db_index=False)
    amount = models.BigIntegerField(help_text="Minor units.")
    currency = models.CharField(max_length=3)
    # What its transitions and their callers may change (core.transitions): written by name.
    TRANSITION_FIELDS = ("state", "psp_reference", "failure_code", "failure_message", "completed_at", "attempts",
                         "next_action_at", "psp_key_generation", "psp_key_spent_at", "updated_at",
                         "next_action_url")

    state = FSMField(default=PaymentOrderState.NOT_STARTED, choices=PaymentOrderState.choices,
                     protected=True)
    # "C": compared byte by byte, as settlement lines' references are (reconciliation 0015), so that a line's
    # reference probes this column's index and an order's probes theirs (payments 0019).
    psp_reference = models.CharField(max_length=100, blank=True, db_collation="C")
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Calls made to the PSP for this order.")
    psp_key_generation = models.PositiveSmallIntegerField(
        default=0, help_text="Bumped only when the PSP has saved a failure against the current key and a "
                             "search, past the PSP's search lag, shows no payment for the order.")
    psp_key_spent_at = models.DateTimeField(
        null=True, blank=True, help_text="When the PSP saved a failure against the current key (sending it "
                                         "again would only replay it).")
    amount_refunded = models.BigIntegerField(default=0, help_text="Minor units reserved or paid by refunds.")
    next_action_at = models.DateTimeField(
        null=True, blank=True, db_index=True,
        help_text="When the sweeper or janitor may act on this order if nothing else has (requires_action: when "
                  "the buyer's challenge expires).")
    next_action_url = models.CharField(
        max_length=2048, blank=True,
        help_text="requires_action: the PSP's 3-D Secure page the buyer is sent to. Blank in every other state.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True, db_index=True,
                                        help_text="When the order became succeeded or failed.")

    class Meta:
        ordering = ["created_at", "id"]
        permissions = [("replay_paymentorder", "Can send a dead-lettered payment order back to the PSP")]
        # Plain btrees (db_index on a CharField adds a varchar_pattern_ops twin for LIKE 'x%', which nothing
        # here asks; each order is written three times, and every index is written with it).
        indexes = [models.Index(fields=["state"], name="payment_order_state"),
                   models.Index(fields=["seller"], name="payment_order_seller")]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_order_amount_positive"),
            # Refunds can never exceed what was captured, whatever the application does.
            models.CheckConstraint(
                condition=models.Q(amount_refunded__gte=0) & models.Q(amount_refunded__lte=models.F("amount")),
                name="payment_order_refunds_within_amount",
            ),
            models.UniqueConstraint(fields=["payment_event", "seller"], name="payment_order_one_per_seller"),
            # A PaymentIntent is made for one order: no two orders share a PSP reference (an order not yet sent
            # has none). Reconciliation relies on it (a settlement line finds at most one order). Migration 0018.
            models.UniqueConstraint(fields=["psp_reference"], condition=~models.Q(psp_reference=""),
                                    name="payment_order_one_per_psp_reference"),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def psp_idempotency_key(self) -> str:
        """The order id, then ``<id>.r<n>`` after the n-th key was spent by a saved PSP failure."""
        return self.id if not self.psp_key_generation else f"{self.id}.r{self.psp_key_generation}"

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @transition(field=state, source=PaymentOrderState.NOT_STARTED, target=PaymentOrderState.EXECUTING)
    def start(self) -> None:
        pass

    @transition(field=state, source=[PaymentOrderState.UNKNOWN, PaymentOrderState.DEAD_LETTER],
                target=PaymentOrderState.EXECUTING)
    def redrive(self) -> None:
        """Send the order to the PSP again, with the same idempotency key."""

    @transition(field=state, source=OPEN_STATES, target=PaymentOrderState.PENDING)
    def await_psp(self, psp_reference: str) -> None:
        self.psp_reference = psp_reference or self.psp_reference
        self.next_action_url = ""

    @transition(field=state, source=[PaymentOrderState.EXECUTING, PaymentOrderState.UNKNOWN,
                                     PaymentOrderState.DEAD_LETTER], target=PaymentOrderState.REQUIRES_ACTION)
    def require_action(self, psp_reference: str, url: str) -> None:
        """The PSP asks the buyer to authenticate (3-D Secure): not a failure, the buyer's answer decides."""
        self.psp_reference = psp_reference or self.psp_reference
        self.next_action_url = url

    @transition(field=state, source=[PaymentOrderState.EXECUTING], target=PaymentOrderState.UNKNOWN)
    def lose_track(self) -> None:
        """The PSP call timed out or the connection dropped: the charge may or may not exist."""

    @transition(field=state, source=[PaymentOrderState.EXECUTING, PaymentOrderState.PENDING,
                                     PaymentOrderState.UNKNOWN, PaymentOrderState.REQUIRES_ACTION],
                target=PaymentOrderState.DEAD_LETTER)
    def dead_letter(self, code: str, message: str) -> None:
        self.failure_code = code[:100]
        self.failure_message = message[:500]
        self.next_action_url = ""

    @transition(field=state, source=OPEN_STATES, target=PaymentOrderState.SUCCEEDED)
    def succeed(self, psp_reference: str) -> None:
        self.psp_reference = psp_reference or self.psp_reference
        self.failure_code = ""
        self.failure_message = ""
        self.next_action_url = ""
        self.completed_at = timezone.now()

    @transition(field=state, source=OPEN_STATES, target=PaymentOrderState.FAILED)
    def fail(self, code: str, message: str, psp_reference: str = "") -> None:
        self.psp_reference = psp_reference or self.psp_reference
        self.failure_code = code[:100]
        self.failure_message = message[:500]
        self.next_action_url = ""
        self.completed_at = timezone.now()


class PSPCustomer(models.Model):
    """A buyer's customer at the PSP: their payment methods are attached to it so that one
    token can pay every seller's order of a checkout."""

    # Looked up through psp_customer_one_per_buyer (client, buyer_reference), which leads with it.
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="psp_customers", db_index=False)
    buyer_reference = models.CharField(max_length=100)
    psp_customer_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "buyer_reference"], name="psp_customer_one_per_buyer")]

    def __str__(self) -> str:
        return f"{self.buyer_reference} → {self.psp_customer_id}"


class PaymentOrderTransition(TransitionAudit):
    """Audit row: every state change of a payment order, who made it and why."""

    payment_order = models.ForeignKey(PaymentOrder, on_delete=models.PROTECT, related_name="transitions",
                                      db_index=False)
    detail = models.JSONField(
        null=True, blank=True,
        help_text="What the row records beyond the move, e.g. the PSP call it answers: {'psp_call': {'attempt', "
                  "'idempotency_key', 'status', 'error', 'latency_ms', 'psp_reference'}} (written in the same "
                  "statement as the row: core.transitions).")

    class Meta(TransitionAudit.Meta):
        indexes = [models.Index(fields=["payment_order"], name="order_transition_order")]

    def __str__(self) -> str:
        return f"{self.payment_order_id}: {self.from_state} → {self.to_state}"


class PaymentEventTransition(TransitionAudit):
    """Audit row: every state change of a payment event, who made it and why."""

    payment_event = models.ForeignKey(PaymentEvent, on_delete=models.PROTECT, related_name="transitions",
                                      db_index=False)

    class Meta(TransitionAudit.Meta):
        indexes = [models.Index(fields=["payment_event"], name="event_transition_event")]

    def __str__(self) -> str:
        return f"{self.payment_event_id}: {self.from_state} → {self.to_state}"


class CheckoutSession(models.Model):
    """A hosted payment page (Stripe Checkout's shape): what the buyer is about to pay, per seller,
    and where to send them after. Holds no card data; the page tokenises the card at the PSP.

    ``open`` until the buyer confirms, which creates its payment event (once: a second tab or a
    refreshed page finds it and shows its progress), or until ``expires_at`` (``expired``: no
    charge can start from it any more)."""

    id = models.CharField(primary_key=True, max_length=40, default=IdFactory("cs"), editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="checkout_sessions")
    buyer_reference = models.CharField(max_length=100)
    buyer_email = models.EmailField(blank=True)
    orders = models.JSONField(help_text="[{seller, amount, currency, items: [{name, quantity, amount}]}], as sent.")
    success_url = models.CharField(max_length=2048)
    cancel_url = models.CharField(max_length=2048)
    idempotency_key = models.CharField(max_length=255)
    payment_event = models.OneToOneField(PaymentEvent, on_delete=models.PROTECT, null=True, blank=True,
                                         related_name="checkout_session",
                                         help_text="Created when the buyer confirms; at most one per session.")
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.id
