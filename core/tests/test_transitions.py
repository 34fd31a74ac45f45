"""``transition_apply``: the one way a payment order, payment event or refund changes state."""
import pytest
from django.db import transaction
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from core.transitions import transition_apply
from payments.models import PaymentOrder, PaymentOrderTransition
from payments.tests.factories import PaymentOrderFactory

pytestmark = pytest.mark.django_db


def test_a_transition_writes_its_fields_and_one_audit_row():
    order = PaymentOrderFactory(state="executing")
    order.attempts = 4  # set by the caller, written with the transition
    with transaction.atomic():
        transition_apply(order, order.succeed, actor="task:t", reason="PSP captured", psp_reference="pi_9")
    stored = PaymentOrder.objects.get(pk=order.pk)
    assert (stored.state, stored.psp_reference, stored.attempts) == ("succeeded", "pi_9", 4)
    assert stored.completed_at is not None and stored.updated_at == order.updated_at
    audit = PaymentOrderTransition.objects.get(payment_order=order)
    assert (audit.from_state, audit.to_state, audit.actor, audit.reason) == ("executing", "succeeded", "task:t",
                                                                             "PSP captured")


def test_a_move_the_state_machine_does_not_allow_writes_nothing():
    order = PaymentOrderFactory(state="succeeded")
    with pytest.raises(TransitionNotAllowed), transaction.atomic():
        transition_apply(order, order.fail, actor="task:t", reason="late failure", code="card_declined",
                         message="declined")
    assert PaymentOrder.objects.get(pk=order.pk).state == "succeeded"
    assert not PaymentOrderTransition.objects.filter(payment_order=order).exists()


def test_a_row_changed_since_it_was_read_is_not_overwritten():
    order = PaymentOrderFactory(state="executing")
    PaymentOrder.objects.filter(pk=order.pk).update(state="failed")  # someone else decided it meanwhile
    with pytest.raises(ConcurrentTransition), transaction.atomic():
        transition_apply(order, order.succeed, actor="task:t", reason="PSP captured", psp_reference="pi_9")
    stored = PaymentOrder.objects.get(pk=order.pk)
    assert (stored.state, stored.psp_reference) == ("failed", "")
    assert not PaymentOrderTransition.objects.filter(payment_order=order).exists()


def test_state_fields_are_found_once_per_class_and_are_django_fsms_own():
    """``core.models.ConcurrentTransitionMixin`` caches the state fields per class: the same fields django-fsm's
    own property finds, and a stale ``save`` is still refused by them."""
    from django_fsm import ConcurrentTransitionMixin as FsmMixin
    from django_fsm import FSMFieldMixin

    from disputes.models import Dispute
    from payments.models import PaymentEvent, Refund
    from reconciliation.models import Correction

    for model in (PaymentOrder, PaymentEvent, Refund, Dispute, Correction):
        instance = model()
        assert instance.state_fields is model().state_fields
        assert list(instance.state_fields) == list(FsmMixin.state_fields.fget(instance))
        assert all(isinstance(f, FSMFieldMixin) for f in instance.state_fields)
    order = PaymentOrderFactory()
    stale = PaymentOrder.objects.get(pk=order.pk)
    PaymentOrder.objects.filter(pk=order.pk).update(state="executing")
    stale.amount += 1
    with pytest.raises(ConcurrentTransition), transaction.atomic():
        stale.save()


def test_a_guarded_transition_is_refused_when_any_field_it_writes_changed_since_it_was_read():
    order = PaymentOrderFactory(state="executing")
    PaymentOrder.objects.filter(pk=order.pk).update(attempts=7)  # still executing: only the guard sees it
    with pytest.raises(ConcurrentTransition), transaction.atomic():
        transition_apply(order, order.succeed, actor="task:t", reason="PSP captured", psp_reference="pi_9",
                         guarded=True)
    stored = PaymentOrder.objects.get(pk=order.pk)
    assert (stored.state, stored.attempts, stored.psp_reference) == ("executing", 7, "")
    assert not PaymentOrderTransition.objects.filter(payment_order=order).exists()


def test_a_guarded_transition_of_a_row_as_read_is_written():
    order = PaymentOrder.objects.get(pk=PaymentOrderFactory(state="executing").pk)  # as the database holds it
    with transaction.atomic():
        transition_apply(order, order.succeed, actor="task:t", reason="PSP captured", psp_reference="pi_9",
                         guarded=True)
    assert PaymentOrder.objects.get(pk=order.pk).state == "succeeded"
    assert PaymentOrderTransition.objects.filter(payment_order=order).count() == 1
