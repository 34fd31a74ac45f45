import hashlib

from core.models import ApiClient


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_client_by_key(*, key: str) -> ApiClient | None:
    return ApiClient.objects.filter(key_hash=api_key_hash(key), is_active=True).first()
