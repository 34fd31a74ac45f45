import pytest
from django.utils import timezone


@pytest.fixture
def now():
    """Now, to the second (settlement files carry no microseconds)."""
    return timezone.now().replace(microsecond=0)
