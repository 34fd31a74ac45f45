"""``core.db_backend``'s connect with a pool: the parameters built once (for the pool), the autocommit mode set on
psycopg's connection only when it changes; transactions and autocommit behave as Django's."""
from unittest import mock

import psycopg
import pytest
from django.db import connection
from django.db.backends.postgresql import base as django_postgresql

from core.db_backend.base import DatabaseWrapper

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def wrapper():
    settings_dict = {**connection.settings_dict, "CONN_MAX_AGE": 0,
                     "OPTIONS": {**connection.settings_dict["OPTIONS"], "pool": {"min_size": 1, "max_size": 2}}}
    wrapper = DatabaseWrapper(settings_dict, alias="db_backend_connect")
    yield wrapper
    wrapper.close()
    wrapper.close_pool()


def test_once_the_pool_is_built_its_parameters_are_answered_without_building_them(wrapper):
    built = django_postgresql.DatabaseWrapper.get_connection_params(wrapper)
    assert wrapper.get_connection_params() == built  # no pool yet: Django's
    pool = wrapper.pool
    assert pool.kwargs == {**built, "autocommit": True}
    with mock.patch.object(django_postgresql.DatabaseWrapper, "get_connection_params") as django_params:
        params = wrapper.get_connection_params()
        wrapper.ensure_connection()
    django_params.assert_not_called()
    assert params == pool.kwargs and params is not pool.kwargs  # a copy: the caller's to change
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        assert cursor.fetchone()[0] == built["dbname"]


def test_a_pooled_connection_in_autocommit_is_not_set_again(wrapper):
    wrapper.ensure_connection()
    wrapper.close()
    with mock.patch.object(psycopg.Connection, "_set_autocommit", autospec=True,
                           side_effect=psycopg.Connection._set_autocommit) as setter:
        wrapper.ensure_connection()  # connect() sets AUTOCOMMIT (True): the pooled connection is in it
        assert setter.call_count == 0
        assert wrapper.get_autocommit() and wrapper.connection.autocommit
        wrapper.set_autocommit(False)  # what atomic() does around a transaction
        wrapper.commit()
        wrapper.set_autocommit(True)
    assert [call.args[1] for call in setter.call_args_list] == [False, True]  # a transaction's changes still made
    assert wrapper.connection.autocommit


def test_transactions_commit_and_roll_back_as_before(wrapper):
    wrapper.ensure_connection()
    with wrapper.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE t (x int)")
    wrapper.set_autocommit(False)
    with wrapper.cursor() as cursor:
        cursor.execute("INSERT INTO t VALUES (1)")
    assert not wrapper.connection.autocommit
    wrapper.rollback()
    wrapper.set_autocommit(True)
    assert wrapper.connection.autocommit
    with wrapper.cursor() as cursor:
        cursor.execute("INSERT INTO t VALUES (2)")  # autocommit: committed at once
        cursor.execute("SELECT array_agg(x) FROM t")
        assert cursor.fetchone()[0] == [2]
        cursor.execute("DROP TABLE t")


def test_a_change_of_mode_inside_a_transaction_is_still_refused(wrapper):
    wrapper.ensure_connection()
    wrapper.set_autocommit(False)
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT 1")  # the transaction is open
    with pytest.raises(psycopg.ProgrammingError):
        wrapper.connection.autocommit = True
    wrapper.rollback()
    wrapper.set_autocommit(True)
