"""Celery tasks: ids in, a service call; the backoff is the service's answer."""
from __future__ import annotations

from celery import shared_task

from notifications import services


@shared_task(bind=True, name="notifications.delivery_attempt", acks_late=True, max_retries=None)
def delivery_attempt_task(self, *, delivery_id: int, actor: str = "task:delivery_attempt") -> str:
    delay = services.delivery_attempt(delivery_id=delivery_id, actor=actor)
    if delay is None:
        return "done"
    raise self.retry(countdown=delay, kwargs={"delivery_id": delivery_id})


@shared_task(name="notifications.sweeper")
def sweeper_task() -> int:
    """Deliveries due whose task was lost."""
    return services.deliveries_redrive_due()
