"""The API driven in-process (DRF's test client) with a fresh key: bad input, no live server needed."""
import pytest
from rest_framework.test import APIClient

from core.services import api_client_create
from payments.tests.factories import SellerFactory


@pytest.fixture
def client_and_key():
    return api_client_create(name="shop")


@pytest.fixture
def drf_api(client_and_key):
    """The API in-process (DRF's test client) with a fresh key; the root conftest's ``api`` is the live server's."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {client_and_key[1]}")
    return client


@pytest.fixture
def seller(client_and_key):
    return SellerFactory(client=client_and_key[0])
