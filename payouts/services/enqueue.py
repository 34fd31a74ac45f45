"""Hand payouts to Celery only once the transaction that made them has committed (``robust``: a broker
outage is logged, and the recovery round sends the work once its lease expires)."""
from django.db import transaction


def enqueue_payout(payout_id: str) -> None:
    def send_payout() -> None:
        from payouts.tasks import payout_execute_task

        payout_execute_task.delay(payout_id=payout_id)

    transaction.on_commit(send_payout, robust=True)


def enqueue_transfer_reversal(payout_id: str) -> None:
    def send_reversal() -> None:
        from payouts.tasks import payout_transfer_reverse_task

        payout_transfer_reverse_task.delay(payout_id=payout_id)

    transaction.on_commit(send_reversal, robust=True)


def enqueue_payouts(payout_ids: list[str]) -> None:
    """A payout run's batch: one message on commit, which the worker fans out into one task per payout (a
    message lost, or a worker dying mid-way, leaves them pending: the recovery round sends them after their
    lease, ``next_action_at``)."""
    if not payout_ids:
        return

    def send_batch() -> None:
        from payouts.tasks import payouts_execute_batch_task

        payouts_execute_batch_task.delay(payout_ids=list(payout_ids))

    transaction.on_commit(send_batch, robust=True)
