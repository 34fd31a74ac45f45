"""Operator console for money out: payout accounts, payouts (with their audit rows), runs and the Connect
webhook inbox. Money and states are read-only; actions call services and ask for a reason."""
from django import forms
from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.timesince import timesince

from core.admin_base import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    ReasonForm,
    TransitionInline,
    action_with_reason,
    json_table,
    state_badge,
)
from core.money import format_money
from payments.models import Seller
from payments.psp.base import PSPError
from payouts import services
from payouts.exceptions import PayoutReplayNotPossible
from payouts.models import (
    NegativeBalance,
    NegativeBalanceWriteOff,
    Payout,
    PayoutAccount,
    PayoutAccountChange,
    PayoutRun,
    PayoutRunItem,
    PayoutState,
    PayoutTransition,
    PayoutWebhookEvent,
)


class PayoutAccountChangeInline(ReadOnlyInline):
    model = PayoutAccountChange
    fields = ("created_at", "from_bank_account", "to_bank_account", "to_last4", "actor", "reason")
    readonly_fields = fields


class PayoutRunForm(ReasonForm):
    payout_date = forms.DateField(required=False, help_text="The run's date (default: today). One payout per "
                                                            "seller, currency and date.")


@admin.register(PayoutAccount)
class PayoutAccountAdmin(ReadOnlyAdmin):
    list_display = ("id", "seller", "psp_account_id", "bank_name", "bank_last4", "currency", "unusable_reason",
                    "updated_at")
    search_fields = ("id", "seller__id", "seller__name", "psp_account_id", "psp_bank_account_id")
    list_filter = ("currency", "bank_country")
    list_select_related = ("seller",)
    inlines = [PayoutAccountChangeInline]
    actions = ["pay_out_now"]

    @admin.action(description="Pay out the selected sellers' available balances now (asks for a reason)",
                  permissions=["run_payouts"])
    def pay_out_now(self, request, queryset):
        def run(account, data):
            day = data.get("payout_date") or timezone.now().date()
            result = services.payouts_run(payout_date=day, actor=f"operator:{request.user.get_username()}",
                                          reason=data["reason"], seller_ids=[account.seller_id])
            outcomes = ", ".join(f"{i.currency} {i.outcome}" for i in result.items.all()) or "no balance"
            return f"run {result.id}: {outcomes}"

        return action_with_reason(
            self, request, queryset.select_related("seller"), action_name="pay_out_now",
            title="Pay out the selected sellers now", apply=run, form_class=PayoutRunForm,
            describe=lambda account: {"Seller": account.seller.name, "Seller id": account.seller_id,
                                      "Bank account": f"{account.bank_name or 'bank'} ••{account.bank_last4}",
                                      "Currency": account.currency.upper(), "PSP account": account.psp_account_id},
            will=("Runs a payout for each seller below now: their available balance in the account's currency, "
                  "transferred and paid out through the PSP, one payout per seller, currency and date."),
            will_not=("It pays nothing a seller does not have available, and a second run for the same date makes no "
                      "second payout."))

    def has_run_payouts_permission(self, request):
        return request.user.has_perm("payouts.run_payouts")


class PayoutTransitionInline(TransitionInline):
    model = PayoutTransition


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = ("id", "seller", "amount", "state", "payout_date", "psp_payout_id", "arrival_date",
                    "attempts", "failure_code", "updated_at")
    search_fields = ("id", "seller__id", "psp_transfer_id", "psp_payout_id", "psp_account_id")
    list_filter = ("state", "currency", "payout_date", "failure_code")
    list_select_related = ("seller",)
    inlines = [PayoutTransitionInline]
    actions = ["replay_dead_letter"]

    @admin.action(description="Send dead-lettered payouts back to the PSP (asks for a reason)",
                  permissions=["replay"])
    def replay_dead_letter(self, request, queryset):
        def replay(payout, data):
            try:
                return services.payout_replay_dead_letter(payout_id=payout.pk, operator=request.user.get_username(),
                                                          reason=data["reason"])
            except (PayoutReplayNotPossible, PSPError) as exc:
                return f"not replayed: {exc}"

        return action_with_reason(
            self, request, queryset.select_related("seller").order_by("created_at", "id"),
            action_name="replay_dead_letter", title="Replay dead-lettered payouts", apply=replay,
            describe=lambda payout: {
                "Payout": payout.pk, "Amount": format_money(payout.amount, payout.currency),
                "Seller": payout.seller.name, "State": state_badge(payout.state, payout.get_state_display()),
                "Attempts": payout.attempts,
                "Last error": ": ".join(x for x in (payout.failure_code, payout.failure_message) if x) or "-"},
            exclude=lambda payout: "" if payout.state == PayoutState.DEAD_LETTER else (
                f"it is {payout.get_state_display()}: only dead-lettered payouts are replayed"),
            will=("For each payout below, asks the PSP first: a transfer or payout it already made is recorded; "
                  "otherwise it is sent again as the recovery round would, under its idempotency keys."),
            will_not="It cannot pay a seller twice (same idempotency keys) and never changes an amount.")

    def has_replay_permission(self, request):
        return request.user.has_perm("payouts.replay_payout")


class PayoutRunItemInline(ReadOnlyInline):
    model = PayoutRunItem
    fields = ("seller_id", "currency", "available_amount", "outcome", "payout")
    readonly_fields = fields


@admin.register(PayoutRun)
class PayoutRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "payout_date", "actor", "payouts_created", "skipped", "started_at", "finished_at")
    list_filter = ("payout_date",)
    search_fields = ("id", "items__seller_id")
    inlines = [PayoutRunItemInline]


@admin.register(PayoutWebhookEvent)
class PayoutWebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "psp_account_id", "object_id", "status", "attempts", "deliveries", "received_at")
    search_fields = ("id", "object_id", "psp_account_id")
    list_filter = ("status", "type")


@admin.register(NegativeBalance)
class NegativeBalanceAdmin(ReadOnlyAdmin):
    """Sellers who owe the platform (a refund or lost dispute after their money was paid out), the oldest debt
    first: the next payouts net it off; an operator may write it off (a reason asked, a permission needed), and
    NEGATIVE_BALANCE_WRITE_OFF_DAYS does it daily when set."""

    list_display = ("owner_id", "seller_name", "currency", "balance", "age", "negative_since", "last_movement")
    list_display_links = None
    search_fields = ("owner_id",)
    list_filter = ("currency",)
    ordering = ("negative_since", "id")
    actions = ["write_off"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            seller_name=Subquery(Seller.objects.filter(pk=OuterRef("owner_id")).values("name")[:1]))

    @admin.display(description="Seller", ordering="seller_name")
    def seller_name(self, obj):
        return obj.seller_name

    @admin.display(description="Negative for", ordering="negative_since")
    def age(self, obj):
        return timesince(obj.negative_since) if obj.negative_since else "-"

    @admin.display(description="Last movement", ordering="updated_at")
    def last_movement(self, obj):
        return obj.updated_at

    @admin.action(description="Write off the selected negative balances as the platform's loss (asks for a reason)",
                  permissions=["write_off"])
    def write_off(self, request, queryset):
        def apply(wallet, data):
            done = services.negative_balance_write_off(seller_id=wallet.owner_id, currency=wallet.currency,
                                                       actor=f"operator:{request.user.get_username()}",
                                                       reason=data["reason"])
            return f"written off as {done.id}" if done else "not negative any more: nothing written off"

        return action_with_reason(self, request, queryset, action_name="write_off",
                                  title="Write off negative balances", apply=apply)

    def has_write_off_permission(self, request):
        return request.user.has_perm("payouts.write_off_negative_balance")


@admin.register(NegativeBalanceWriteOff)
class NegativeBalanceWriteOffAdmin(ReadOnlyAdmin):
    list_display = ("id", "seller", "currency", "amount", "negative_since", "actor", "reason", "created_at")
    search_fields = ("id", "seller__id", "seller__name", "idempotency_key")
    list_filter = ("currency", "created_at")
    list_select_related = ("seller",)
    fields = ("id", "type", "psp_account_id", "object_id", "status", "attempts", "deliveries", "last_error",
              "received_at", "processed_at", "payload_table")

    @admin.display(description="Payload")
    def payload_table(self, obj):
        return json_table(obj.payload)
