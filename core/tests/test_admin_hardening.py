"""Admin hardening: re-running webhooks needs a permission; nobody deletes idempotency records."""
import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.utils import timezone

from core.models import IdempotencyRecord
from core.services import api_client_create
from core.tests.helpers import operator_client
from payments.models import WebhookEvent

pytestmark = pytest.mark.django_db

WEBHOOKS = "/admin/payments/webhookevent/"


@pytest.fixture
def failed_event():
    return WebhookEvent.objects.create(id="evt_failed", type="customer.created", status=WebhookEvent.Status.FAILED,
                                       payload={"id": "evt_failed", "type": "customer.created",
                                                "data": {"object": {"id": "cus_1", "object": "customer"}}},
                                       attempts=1, last_error="boom")


def _reprocess(client, event):
    """The action's confirmation page, then its confirmation with a reason."""
    client.post(WEBHOOKS, {"action": "reprocess", "_selected_action": [event.pk]})
    return client.post(WEBHOOKS, {"action": "reprocess", "_selected_action": [event.pk], "confirmed": "1",
                                  "reason": "PSP outage over"})


def test_a_finance_operator_is_neither_offered_nor_allowed_to_rerun_webhooks(failed_event):
    client = operator_client("fin", "Finance operators")
    page = client.get(WEBHOOKS)
    assert page.status_code == 200  # they may look
    assert b'value="reprocess"' not in page.content
    _reprocess(client, failed_event)
    failed_event.refresh_from_db()
    assert (failed_event.status, failed_event.attempts) == ("failed", 1)  # nothing ran


def test_a_payment_operator_may_rerun_webhooks(failed_event):
    client = operator_client("pat", "Payment operators")
    assert b'value="reprocess"' in client.get(WEBHOOKS).content
    assert _reprocess(client, failed_event).status_code == 302
    failed_event.refresh_from_db()
    assert failed_event.attempts == 2 and failed_event.status != "failed"


def test_the_rerun_permission_is_custom_and_only_payment_operators_hold_it():
    call_command("create_operator_groups")
    call_command("create_operator_groups")  # idempotent
    perm = Permission.objects.get(content_type__app_label="payments", codename="reprocess_webhookevent")
    assert list(perm.group_set.values_list("name", flat=True)) == ["Payment operators"]
    # Gone (a flushed database): the command brings it back.
    perm.delete()
    call_command("create_operator_groups")
    assert Group.objects.get(name="Payment operators").permissions.filter(codename="reprocess_webhookevent").exists()


@pytest.fixture
def idempotency_record():
    client, _ = api_client_create(name="shop")
    now = timezone.now()
    return IdempotencyRecord.objects.create(client=client, key="k-1", request_method="POST",
                                            request_path="/api/v1/checkouts", request_fingerprint="f" * 64,
                                            status=IdempotencyRecord.Status.COMPLETED, response_status=201,
                                            response_body={}, locked_at=now, completed_at=now)


def test_a_superuser_cannot_delete_an_idempotency_record(admin_client, idempotency_record):
    base = "/admin/core/idempotencyrecord/"
    assert admin_client.get(f"{base}{idempotency_record.pk}/delete/").status_code == 403
    assert admin_client.post(f"{base}{idempotency_record.pk}/delete/", {"post": "yes"}).status_code == 403
    changelist = admin_client.get(base)
    assert changelist.status_code == 200 and b"delete_selected" not in changelist.content
    admin_client.post(base, {"action": "delete_selected", "_selected_action": [idempotency_record.pk], "post": "yes"})
    assert IdempotencyRecord.objects.filter(pk=idempotency_record.pk).exists()
    assert admin_client.get(f"{base}{idempotency_record.pk}/change/").status_code == 200  # still viewable


@pytest.mark.django_db
def test_a_stored_idempotent_response_is_never_shown_in_the_admin(admin_client):
    from django.utils import timezone

    from core.models import IdempotencyRecord
    from core.services import api_client_create

    client, _ = api_client_create(name="shop")
    record = IdempotencyRecord.objects.create(client=client, key="k", request_method="POST", request_path="/x",
                                              request_fingerprint="f", status="completed", response_status=201,
                                              locked_at=timezone.now(),
                                              response_body={"secret": "whsec_shown_once"})
    page = admin_client.get(f"/admin/core/idempotencyrecord/{record.pk}/change/")
    assert page.status_code == 200
    assert b"whsec_shown_once" not in page.content
