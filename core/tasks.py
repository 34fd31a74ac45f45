from celery import shared_task

from core import services


@shared_task(name="core.tasks.idempotency_keys_expire")
def idempotency_keys_expire() -> int:
    return services.idempotency_keys_expire()
