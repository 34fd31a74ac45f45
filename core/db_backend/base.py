"""Django's PostgreSQL backend, with a pool health check that costs a poll of the socket instead of a round trip.

With ``CONN_HEALTH_CHECKS``, Django builds psycopg's pool with ``check=ConnectionPool.check_connection``: an
empty query each time a connection is handed out (twice per order in the executor, once per API request). A
pooled connection sits idle between uses, and PostgreSQL sends nothing on an idle connection unless it is
ending it: a terminated backend, a restart or a shutdown sends its error and closes the socket, which then
reads as ready. So the socket is polled first, and only a connection the server spoke on is sent the empty
query, which raises on a dead one; the pool then hands out another. A connection that died without a word
(a host gone without closing its sockets) would hang the empty query as well, until TCP gives up.

Django passes ``check`` itself (a ``check`` in ``OPTIONS["pool"]`` would be a duplicate keyword), so the pool
is built here: Django 5.2's ``DatabaseWrapper.pool`` with that one argument changed.

A pooled connection is taken and handed back around every PSP call (the executor's threads hold none while they
wait), so Django's ``connect()`` runs two or three times per order. Two of its steps are skipped where they would
change nothing: the connection parameters are built only for the pool (``connect()`` builds them anew each time and
then, with a pool, does not use them), and the autocommit mode is set on psycopg's connection only when it differs
from the mode the connection is in (a pooled connection comes back idle, in autocommit).
"""
import select

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool


def check_connection_if_server_spoke(conn) -> None:
    """The pool's ``check``: raise if the connection is closed, or if the server sent something on the idle
    connection and the empty query then fails."""
    if conn.closed:
        raise ConnectionError("the pooled connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        ConnectionPool.check_connection(conn)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        """Django's, except once this alias's pool is built: then the parameters its connections were opened with
        (what ``connect()`` would build, and with a pool pass to a ``get_new_connection`` that ignores them)."""
        pool = self._connection_pools.get(self.alias) if self.settings_dict["OPTIONS"].get("pool") else None
        return super().get_connection_params() if pool is None else dict(pool.kwargs)

    def _set_autocommit(self, autocommit):
        """Django's, without psycopg's setter (a generator run through its wait loop) when an idle connection is
        in that mode already; psycopg's setter otherwise (it refuses a change inside a transaction)."""
        conn = self.connection
        if conn.autocommit == autocommit and conn.pgconn.transaction_status == TransactionStatus.IDLE:
            return
        super()._set_autocommit(autocommit)

    @property
    def pool(self):
        pool_options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == base.NO_DB_ALIAS or not pool_options:
            return None
        if self.alias not in self._connection_pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True  # as Django's: it sets the mode itself later
            pool = ConnectionPool(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_connection,
                check=check_connection_if_server_spoke if self.settings_dict["CONN_HEALTH_CHECKS"] else None,
                **({} if pool_options is True else pool_options),
            )
            self._connection_pools.setdefault(self.alias, pool)  # the first of racing threads wins, as Django's
        return self._connection_pools[self.alias]
