"""PostGIS's backend, with two savings for the statements every web request runs.

Prepared statements (`prepared_cursor`): PostgreSQL parses, analyses and plans each statement
it is sent; for the one-row reads of every request (the token, an order) that was about two
thirds of its CPU under load, more than running them. A prepared statement is planned once
per connection and reused (psycopg names and tracks them; `infra.db.queries` uses it, for
those reads and for the worker's batch statements, `binary_execute`).
They live on the server connection, so a pooler in transaction mode (PgBouncer, RDS Proxy)
would need to pin sessions; and a migration that changes the type of a column they select
fails them until the web's connections are renewed (CONN_MAX_AGE, a minute).

The health check costs no round trip while the connection is sound.

Django checks a kept connection before a request's first query (CONN_HEALTH_CHECKS) with a
`SELECT 1`: a round trip on every request, about a fifth of a short read's time on the web.
A connection the server ended (a restart, a failover, an idle timeout,
`pg_terminate_backend`) says so by itself: the server sends its FATAL error and closes the
stream, so the idle socket becomes readable. Only then is the `SELECT 1` needed, and Django's
check runs; it also runs for whatever else the server may have sent meanwhile (a TLS session
ticket, a notice), after which the socket is quiet again. A server that vanished without a
word (a network cut) is not seen by either check before the query times out.
https://docs.djangoproject.com/en/5.2/ref/databases/#persistent-connections
"""

from __future__ import annotations

import select

import psycopg
from django.contrib.gis.db.backends.postgis.base import DatabaseWrapper as PostGISDatabaseWrapper
from django.contrib.gis.db.backends.postgis.operations import PostGISOperations
from django.db.backends.utils import CursorWrapper
from django.utils.asyncio import async_unsafe

from infra.db.django_private import PreparingCursor, cursor_wrap, health_check_passed, health_check_pending


class DatabaseOperations(PostGISOperations):
    def last_executed_query(self, cursor, sql, params):
        # What query logging (DEBUG, tests) shows: as Django shows server-side binding.
        if isinstance(cursor, PreparingCursor):
            return self.compose_sql(sql, params)
        return super().last_executed_query(cursor, sql, params)


class DatabaseWrapper(PostGISDatabaseWrapper):
    ops_class = DatabaseOperations

    @async_unsafe
    def prepared_cursor(self) -> CursorWrapper:
        """`cursor()`, for statements to prepare: the same checks, error translation and
        query logging. Only for a few fixed statements (each is kept per connection)."""
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            return cursor_wrap(self, PreparingCursor(self.connection))

    def close_if_health_check_failed(self) -> None:
        if not health_check_pending(self):
            return
        if self._idle_socket_is_quiet():
            health_check_passed(self)
            return
        super().close_if_health_check_failed()

    def _idle_socket_is_quiet(self) -> bool:
        """True when the connection is open and the server has sent nothing since the last
        answer was read (between requests, nothing is in flight)."""
        try:
            if self.connection.closed:
                return False
            poller = select.poll()  # errors and hang-ups are reported whatever is asked
            poller.register(self.connection.fileno(), select.POLLIN | select.POLLPRI)
            return not poller.poll(0)
        except (OSError, ValueError, psycopg.Error):
            return False
