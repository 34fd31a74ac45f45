"""Database connections around slow calls."""
from django.db import connection


def db_connection_release() -> None:
    """Hand this thread's connection back to the pool before a slow call to the outside world
    (the PSP), so that a hundred threads waiting on the PSP hold no connection between them.
    Outside a pool (tests, persistent connections) and inside a transaction it does nothing."""
    if connection.connection is not None and not connection.in_atomic_block and connection.pool:
        connection.close()
