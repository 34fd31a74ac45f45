import hashlib

from django.db import connection

from core.models import ApiClient


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# Every API request's first statement, written once: the ORM compiled it anew per request (a third of the
# trivial endpoint's cost). The key hash is unique, so no ORDER BY is needed for at most one row.
_FIELDS = [f.attname for f in ApiClient._meta.concrete_fields]
_BY_KEY = (f"SELECT {', '.join(_FIELDS)} FROM {ApiClient._meta.db_table}"
           " WHERE key_hash = %s AND is_active LIMIT 1")


def api_client_by_key(*, key: str) -> ApiClient | None:
    with connection.cursor() as cur:
        cur.execute(_BY_KEY, [api_key_hash(key)])
        row = cur.fetchone()
    return None if row is None else ApiClient.from_db(connection.alias, _FIELDS, row)
