import factory

from core.models import ApiClient
from core.selectors import api_key_hash
from payments.models import PaymentEvent, PaymentOrder, Seller


class ApiClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiClient

    name = factory.Sequence(lambda n: f"storefront-{n}")
    key_prefix = "mk_live_test"
    key_hash = factory.Sequence(lambda n: api_key_hash(f"test-key-{n}"))


class SellerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Seller

    client = factory.SubFactory(ApiClientFactory)
    name = factory.Sequence(lambda n: f"Seller {n}")


class PaymentEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaymentEvent

    client = factory.SubFactory(ApiClientFactory)
    buyer_reference = "buyer-1"
    payment_method = "pm_card_visa"
    psp_payment_method = factory.SelfAttribute("payment_method")  # one order: the token is charged as it is
    idempotency_key = factory.Sequence(lambda n: f"key-{n}")


class PaymentOrderFactory(factory.django.DjangoModelFactory):
    """Orders in any state, as if a task had (or had not) run: the state is set at creation only."""

    class Meta:
        model = PaymentOrder

    payment_event = factory.SubFactory(PaymentEventFactory)
    seller = factory.SubFactory(SellerFactory, client=factory.SelfAttribute("..payment_event.client"))
    amount = 1000
    currency = "usd"
