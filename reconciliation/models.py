"""Settlement files and their lines, reconciliation runs and the breaks they find.

Money is an ``int`` in the currency's minor unit beside a lowercase ISO 4217 code.
Text read from files is stored as ``TextField`` (no length limit a bank could exceed).
"""
from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.utils import timezone
from django_fsm import FSMField, transition

from core.models import ConcurrentTransitionMixin, TransitionAudit
from reconciliation.record_types import BANK_LINES, MATCHED_ONE_BY_ONE, PAYOUT_LINES


class SettlementFile(models.Model):
    """One imported PSP report or bank statement; its SHA-256 makes importing idempotent."""

    sha256 = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255)
    format = models.CharField(max_length=16, db_index=True)
    size = models.BigIntegerField(help_text="Bytes.")
    imported_at = models.DateTimeField(auto_now_add=True, db_index=True)
    imported_by = models.CharField(max_length=100, help_text="e.g. operator:alice, task:reconciliation_nightly")
    line_count = models.PositiveIntegerField(default=0, help_text="Records and malformed lines stored.")
    malformed_count = models.PositiveIntegerField(default=0)
    counts_by_type = models.JSONField(default=dict, blank=True)
    statements = models.JSONField(default=list, blank=True, help_text="Statement headers (ids, balances).")
    settled_at = models.DateTimeField(null=True, blank=True,
                                      help_text="When the batch closed: its payout's time, else its latest line.")
    fees = models.JSONField(default=list, blank=True,
                            help_text="Fee totals per payout and currency, minor units: [[payout, currency, total,"
                                      " lines], ...]; computed on import.")
    reconciled_at = models.DateTimeField(null=True, blank=True,
                                         help_text="When a reconciliation run first evaluated every line.")
    unique_references = models.BooleanField(
        null=True, blank=True,
        help_text="No two lines share a PSP reference (checked on import of a plain Stripe report; empty: not"
                  " checked). Matching looks for duplicates within a file only when this is not true.")
    twin_references = models.JSONField(
        null=True, blank=True,
        help_text="The PSP references two charge lines or more of the file have (found on import by Arrow; empty:"
                  " not checked, or too many). Matching reads them instead of looking in the lines.")
    reconciled_run = models.ForeignKey("ReconciliationRun", null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="files", help_text="The run that first evaluated every line.")

    class Meta:
        ordering = ["-imported_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.format}, {self.sha256[:12]})"


class MatchState(models.TextChoices):
    PENDING = "pending", "pending (not reconciled yet)"
    MATCHED = "matched"
    BREAK = "break", "break (see its break)"
    UNRELATED = "unrelated", "unrelated (bank line that is no payout)"
    MALFORMED = "malformed"


class SettlementLine(models.Model):
    """One record (or malformed line) of a settlement file, as read; never edited.

    What matching made of it lives in ``SettlementMatch`` (or, for the common case, in its
    file's ``reconciled_run``): ``selectors.settlement_lines_with_match`` reads it.
    """

    # Written only by the import, with COPY, in the transaction that creates the file: a
    # foreign-key check per line would cost more than writing it (checked at commit, a
    # million a file). Lines of a file are written together, so a BRIN index finds them.
    file = models.ForeignKey(SettlementFile, on_delete=models.PROTECT, related_name="lines", db_index=False,
                             db_constraint=False)
    ordinal = models.PositiveIntegerField(help_text="Position among the file's records, 1-based.")
    line_number = models.PositiveIntegerField(help_text="Physical line (CSV), entry (camt.053) or transaction (MT940).")
    record_type = models.CharField(max_length=32, help_text="Normalized type, or 'malformed'.")
    raw_type = models.TextField(blank=True)
    # "C" (byte order, memcmp): the reference index's comparisons and the import's sort by reference need no
    # locale (migration 0015); the orders' column has the same collation, so that probes either way use an index.
    psp_reference = models.TextField(blank=True, db_collation="C")
    source_reference = models.TextField(blank=True, help_text="The row's own object id (Stripe source_id).")
    merchant_reference = models.TextField(blank=True)
    payout_reference = models.TextField(blank=True)
    currency = models.CharField(max_length=3, blank=True)
    gross = models.BigIntegerField(null=True, blank=True)
    fee = models.BigIntegerField(null=True, blank=True)
    net = models.BigIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    source_line = models.TextField(blank=True)
    error = models.TextField(blank=True, help_text="Why the line is malformed.")

    class Meta:
        ordering = ["file", "ordinal"]
        indexes = [
            BrinIndex(fields=["file"], name="settlement_line_file_brin"),
            # The few lines matching looks at one by one (refunds, payouts, bank and malformed lines).
            models.Index(fields=["file"], name="settlement_line_file_other",
                         condition=models.Q(record_type__in=[str(t) for t in MATCHED_ONE_BY_ONE])),
            models.Index(fields=["psp_reference"], name="settlement_line_psp_ref"),
            models.Index(fields=["payout_reference"], name="settlement_line_payout_ref",
                         condition=models.Q(record_type__in=[str(t) for t in PAYOUT_LINES])),
            models.Index(fields=["currency", "net"], name="settlement_line_bank_amount",
                         condition=models.Q(record_type__in=[str(t) for t in BANK_LINES])),
        ]

    def __str__(self) -> str:
        return f"{self.file.name}:{self.line_number} {self.record_type}"


#: ``SettlementMatch.kind`` of a money-out line (``matching.transfers``): its ``object_id`` is our payout's id.
SELLER_PAYOUT_MATCH = "seller_payout"


class SettlementMatch(models.Model):
    """What reconciliation made of one line, when it is not the common case.

    The common case is a line matched by PSP reference in its file's first run: a charge to
    the payment order with the same PSP reference, or a fee line. Such a line has no row: its
    file's ``reconciled_run`` says which run matched it, and writing a million rows a night
    to say "matched by reference" would cost more than the rest of the run. Every other outcome
    has a row: breaks, malformed and unrelated bank lines, refunds, payouts and bank credits,
    orders found by merchant reference, and any line a later run decided again (a break that
    clears). ``run`` is the run that last changed the row. Read both cases together through
    ``selectors.settlement_lines_with_match``, never this table alone.
    """

    # No foreign-key constraints: checking them costs more than writing the rows (a million per
    # file), and only ``reconciliation_run`` writes here, from lines and the run it just read in
    # the same transaction; lines and runs are never deleted.
    line = models.OneToOneField(SettlementLine, on_delete=models.PROTECT, primary_key=True, related_name="match",
                                db_constraint=False)
    state = models.CharField(max_length=16, choices=MatchState.choices)
    kind = models.CharField(max_length=20, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    run = models.ForeignKey("ReconciliationRun", on_delete=models.PROTECT, related_name="+", db_index=False,
                            db_constraint=False)

    class Meta:
        indexes = [
            models.Index(fields=["object_id"], name="settlement_match_order",
                         condition=models.Q(kind="payment_order")),
            models.Index(fields=["object_id"], name="settlement_match_payout",
                         condition=models.Q(kind=SELLER_PAYOUT_MATCH)),
            models.Index(fields=["state"], name="settlement_match_open",
                         condition=models.Q(state__in=["break", "unrelated", "malformed"])),
        ]

    def __str__(self) -> str:
        return f"line {self.line_id}: {self.state} {self.kind} {self.object_id}".rstrip()


class LineDecision(models.Model):
    """What a run's decision of a charge-like line it left a break read: the line's references, its duplicate key and
    the order found (``order_fingerprint``: ``rules.order_fingerprint``), so that a later run need not decide it
    again while they are unchanged (``matching.unchanged``). Rewritten whenever the line is decided, by runs only."""

    line = models.OneToOneField(SettlementLine, on_delete=models.PROTECT, primary_key=True, related_name="+",
                                db_constraint=False)
    record_type = models.CharField(max_length=32)
    psp_reference = models.TextField(blank=True, db_collation="C")
    merchant_reference = models.TextField(blank=True)
    break_class = models.CharField(max_length=32)
    dup_key = models.TextField(blank=True)  # '' when none
    order_fingerprint = models.TextField(blank=True)  # '': decided again whatever changed
    run = models.ForeignKey("ReconciliationRun", on_delete=models.PROTECT, related_name="+", db_index=False,
                            db_constraint=False)

    def __str__(self) -> str:
        return f"line {self.line_id}: {self.break_class} ({self.order_fingerprint or 'decided every run'})"


class ReconciliationRun(models.Model):
    """One execution of matching; ``stats`` holds counts and amounts per break class."""

    date = models.DateField(db_index=True, help_text="The business day reconciled.")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    actor = models.CharField(max_length=100)
    lines_evaluated = models.PositiveIntegerField(default=0)
    stats = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        permissions = [("run_reconciliation", "Can reconcile a day again from the console")]

    def __str__(self) -> str:
        return f"Run #{self.pk} for {self.date}"


class BreakClass(models.TextChoices):
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    MISSING_IN_BOOKS = "missing_in_books", "missing in books (settled by the PSP, unknown to us)"
    MISSING_IN_SETTLEMENT = "missing_in_settlement", "missing in settlement (succeeded, not settled)"
    DUPLICATE = "duplicate"
    TIMING = "timing", "timing (settled in a later batch)"
    UNKNOWN_RECORD_TYPE = "unknown_record_type"
    PAYOUT_NOT_RECEIVED = "payout_not_received"
    PAYOUT_FAILED_AT_PSP = "payout_failed_at_psp", "payout failed at the PSP (not failed in our books)"
    REFUND_FAILED_AT_PSP = "refund_failed_at_psp", "refund failed at the PSP (succeeded in our books)"
    MALFORMED_LINE = "malformed_line"
    BANK_BALANCE_MISMATCH = "bank_balance_mismatch", "bank balance mismatch (statement's closing vs assets:bank)"


class BreakState(models.TextChoices):
    OPEN = "open"
    RESOLVED = "resolved"
    AUTO_RESOLVED = "auto_resolved"


class Resolution(models.TextChoices):
    BOOKED_MANUALLY = "booked_manually", "booked manually"
    PSP_CORRECTED = "psp_corrected", "corrected by the PSP"
    WRITTEN_OFF = "written_off", "written off"
    NO_ACTION = "no_action", "no action needed"
    SETTLED_LATER = "settled_later", "settled later (automatic)"
    CLEARED = "cleared", "no longer observed (automatic)"


class Break(models.Model):
    """A difference between the PSP/bank and our books, of exactly one class.

    ``key`` makes a re-run idempotent: ``<class>:line:<line id>`` or ``<class>:object:<id>``.
    """

    key = models.CharField(max_length=200, unique=True)
    break_class = models.CharField(max_length=32, choices=BreakClass.choices, db_index=True)
    state = models.CharField(max_length=16, choices=BreakState.choices, default=BreakState.OPEN, db_index=True)
    run = models.ForeignKey(ReconciliationRun, on_delete=models.PROTECT, related_name="breaks",
                            help_text="The run that found it.")
    # Not indexed: every run rewrites it on each break it sees again (every open line break, every night), and
    # an update that changes no indexed column can stay on its page (HOT: no new entry in the 16 other indexes;
    # the table keeps room for it on every page: fillfactor 50, migrations 0010 and 0014). Who reads by it reads a
    # run's breaks once.
    last_seen_run = models.ForeignKey(ReconciliationRun, on_delete=models.PROTECT, related_name="+", db_index=False)
    line = models.ForeignKey(SettlementLine, on_delete=models.PROTECT, null=True, blank=True, related_name="breaks")
    file_format = models.CharField(max_length=16, blank=True, db_index=True)
    occurred_on = models.DateField(null=True, blank=True, db_index=True)
    expected_amount = models.BigIntegerField(null=True, blank=True, help_text="Our books, minor units.")
    expected_currency = models.CharField(max_length=3, blank=True)
    actual_amount = models.BigIntegerField(null=True, blank=True, help_text="The PSP or bank, minor units.")
    actual_currency = models.CharField(max_length=3, blank=True)
    object_kind = models.CharField(max_length=20, blank=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    psp_reference = models.TextField(blank=True)
    description = models.TextField()
    resolution = models.CharField(max_length=32, choices=Resolution.choices, blank=True)
    reason = models.TextField(blank=True)
    resolved_by = models.CharField(max_length=100, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", help_text="The operator working it (each change is a note).")

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("resolve_break", "Can resolve reconciliation breaks"),
                       ("work_break", "Can assign reconciliation breaks and write notes on them")]

    def __str__(self) -> str:
        return f"{self.break_class} #{self.pk}"


class BreakResolution(models.Model):
    """Audit row: every state change of a break, who made it and why."""

    brk = models.ForeignKey(Break, on_delete=models.PROTECT, related_name="resolutions")
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    resolution = models.CharField(max_length=32, choices=Resolution.choices)
    reason = models.TextField()
    actor = models.CharField(max_length=100, help_text="operator:<username> or system:reconcile")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.brk_id}: {self.from_state} → {self.to_state} by {self.actor}"


class BreakNoteKind(models.TextChoices):
    NOTE = "note"
    OWNER = "owner", "owner changed"


class BreakNote(models.Model):
    """What operators wrote on a break while working it, and each change of its owner: append-only
    (PostgreSQL refuses an UPDATE or DELETE, migration 0006)."""

    brk = models.ForeignKey(Break, on_delete=models.PROTECT, related_name="notes", verbose_name="break")
    kind = models.CharField(max_length=16, choices=BreakNoteKind.choices, default=BreakNoteKind.NOTE)
    text = models.TextField()
    actor = models.CharField(max_length=100, help_text="operator:<username>")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.brk_id}: {self.kind} by {self.actor}"


class CorrectionState(models.TextChoices):
    PROPOSED = "proposed", "proposed (awaiting a second operator)"
    APPROVED = "approved", "approved (posted)"
    REJECTED = "rejected"


class Correction(ConcurrentTransitionMixin, models.Model):
    """An adjusting ledger posting proposed to resolve a break, posted only once another operator approves it.

    ``entries`` are the exact ``[account, currency, amount]`` legs (debit positive) fixed at the proposal from
    one of the allowed adjustments (``services.corrections.ADJUSTMENTS``); approval posts them under
    ``posting_key`` through ``ledger.services`` and resolves the break, in one transaction.
    """

    TRANSITION_FIELDS = ("state", "decided_by", "decided_at", "decision_reason", "posting_key")  # core.transitions

    brk = models.ForeignKey(Break, on_delete=models.PROTECT, related_name="corrections", verbose_name="break")
    state = FSMField(default=CorrectionState.PROPOSED, choices=CorrectionState.choices, protected=True,
                     db_index=True)
    adjustment = models.CharField(max_length=40, help_text="One of the allowed adjustments.")
    amount = models.BigIntegerField(help_text="Minor units, positive.")
    currency = models.CharField(max_length=3)
    entries = models.JSONField(help_text="[[account, currency, amount], ...], debit positive, minor units.")
    reason = models.TextField(help_text="Why the proposer wants it posted.")
    proposed_by = models.CharField(max_length=100)
    proposed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    decided_by = models.CharField(max_length=100, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    posting_key = models.CharField(max_length=100, null=True, blank=True, unique=True,
                                   help_text="The ledger transaction's idempotency key, set on approval.")

    class Meta:
        ordering = ["-proposed_at", "-id"]
        permissions = [("propose_correction", "Can propose a ledger correction for a break"),
                       ("approve_correction", "Can approve or reject a ledger correction proposed by another")]
        constraints = [
            models.UniqueConstraint(fields=["brk"], condition=models.Q(state="proposed"),
                                    name="correction_one_proposed_per_break"),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="correction_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"correction #{self.pk} of break #{self.brk_id} ({self.state})"

    def _decide(self, by: str, note: str) -> None:
        self.decided_by = by[:100]
        self.decided_at = timezone.now()
        self.decision_reason = note

    @transition(field=state, source=CorrectionState.PROPOSED, target=CorrectionState.APPROVED)
    def approve(self, *, by: str, note: str) -> None:
        self._decide(by, note)
        self.posting_key = f"correction:{self.pk}"

    @transition(field=state, source=CorrectionState.PROPOSED, target=CorrectionState.REJECTED)
    def reject(self, *, by: str, note: str) -> None:
        self._decide(by, note)


class CorrectionTransition(TransitionAudit):
    """Audit row: a correction proposed (from ``""``), approved or rejected; who and why."""

    correction = models.ForeignKey(Correction, on_delete=models.PROTECT, related_name="transitions")

    class Meta(TransitionAudit.Meta):
        pass

    def __str__(self) -> str:
        return f"{self.correction_id}: {self.from_state or '-'} → {self.to_state}"
