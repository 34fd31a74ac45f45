"""Statements are bound and prepared by PostgreSQL (issue #8): a statement the app runs again on a connection
is parsed and planned once there (the pay-in path runs the same few dozen on every order)."""
import pytest
from django.db import connection

SQL = "SELECT count(*) FROM payments_paymentorder WHERE state = %s"


@pytest.mark.django_db
def test_a_statement_run_again_on_a_connection_is_prepared_there():
    assert connection.settings_dict["OPTIONS"]["server_side_binding"] is True
    with connection.cursor() as cursor:
        for state in ("succeeded", "failed", "executing"):
            cursor.execute(SQL, [state])
            assert cursor.fetchone() == (0,)
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s",
                       ["%FROM payments_paymentorder WHERE state = $1%"])
        assert cursor.fetchall() == [("SELECT count(*) FROM payments_paymentorder WHERE state = $1",)]


@pytest.mark.django_db
def test_values_are_bound_by_the_server_as_they_are():
    awkward = "it's 100% \\ {x} $1 %s ünïcode"
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text, %s::bigint, %s::jsonb", [awkward, 2**62, '{"a": [1, "b"]}'])
        assert cursor.fetchone() == (awkward, 2**62, '{"a": [1, "b"]}')  # Django reads jsonb as text
