"""The pool's health check (``core.db_backend``): a healthy idle connection passes without a round trip, one the
server ended is refused, and the backend's pool hands out working connections after PostgreSQL terminated every
one it held (where a pool without the check hands out a dead one)."""
import time

import psycopg
import pytest
from django.db import connection

from core.db_backend.base import DatabaseWrapper, check_connection_if_server_spoke

pytestmark = pytest.mark.django_db(transaction=True)


def conninfo() -> str:
    params = connection.get_connection_params()
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items()
                                            if k in {"host", "port", "user", "password", "dbname"} and v})


def terminate(pids) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM unnest(%s::int[]) AS pid", [list(pids)])
    time.sleep(0.3)  # the server's error and close reach the sockets


def pooled_wrapper(alias: str, *, health_checks: bool) -> DatabaseWrapper:
    settings_dict = {**connection.settings_dict, "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": health_checks,
                     "OPTIONS": {**connection.settings_dict["OPTIONS"],
                                 "pool": {"min_size": 2, "max_size": 2, "timeout": 5}}}
    return DatabaseWrapper(settings_dict, alias=alias)


def test_a_healthy_idle_connection_passes_without_a_statement():
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        conn.execute("SELECT 1")
        check_connection_if_server_spoke(conn)
        check_connection_if_server_spoke(conn)
        with connection.cursor() as cursor:  # the backend's last statement is still ours
            cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [conn.info.backend_pid])
            assert cursor.fetchone()[0] == "SELECT 1"


def test_a_connection_the_server_ended_is_refused():
    conn = psycopg.connect(conninfo(), autocommit=True)
    try:
        terminate([conn.info.backend_pid])
        with pytest.raises(psycopg.OperationalError):
            check_connection_if_server_spoke(conn)
    finally:
        conn.close()
    with pytest.raises(ConnectionError):
        check_connection_if_server_spoke(conn)


@pytest.mark.parametrize("health_checks", [True, False])
def test_the_backends_pool_replaces_the_connections_postgresql_terminated(health_checks):
    wrapper = pooled_wrapper(f"pool_check_{health_checks}", health_checks=health_checks)
    pool = wrapper.pool
    try:
        pool.open(wait=True)
        assert (pool._check is check_connection_if_server_spoke) is health_checks  # noqa: SLF001
        held = set()
        with pool.connection() as first, pool.connection() as second:
            held = {first.info.backend_pid, second.info.backend_pid}
        terminate(held)
        answers = []
        for _ in range(3):
            try:
                with pool.connection() as conn:
                    answers.append(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
            except psycopg.OperationalError:
                answers.append(None)
        if health_checks:
            assert None not in answers and not held & set(answers)
        else:
            assert None in answers  # without the check, a dead connection is handed out
    finally:
        wrapper.close_pool()
