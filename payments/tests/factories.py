import factory

from core.models import ApiClient
from core.selectors import api_key_hash
from payments.models import Seller


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
