"""Write-side business logic of money out, one module per concern."""
from payouts.services.accounts import PayoutAccountOpened, payout_account_connect, payout_account_save
from payouts.services.execution import (
    payout_apply_result,
    payout_create,
    payout_execute,
    payout_fail,
    payout_posting_key,
    payout_schedule_retry,
    payout_transfer_reverse,
)
from payouts.services.recovery import payout_replay_dead_letter, payout_resolve, payouts_recover
from payouts.services.runs import payouts_run
from payouts.services.webhooks import payout_webhook_process, payout_webhook_receive
from payouts.services.write_offs import (
    negative_balance_write_off,
    negative_balances_write_off_due,
    write_off_posting_key,
)

__all__ = [
    "negative_balance_write_off", "negative_balances_write_off_due", "write_off_posting_key",
    "PayoutAccountOpened", "payout_account_connect", "payout_account_save", "payout_apply_result",
    "payout_create", "payout_execute", "payout_fail", "payout_posting_key", "payout_replay_dead_letter",
    "payout_resolve", "payout_schedule_retry", "payout_transfer_reverse", "payout_webhook_process",
    "payout_webhook_receive", "payouts_recover", "payouts_run",
]
