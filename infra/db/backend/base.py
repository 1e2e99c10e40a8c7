"""PostGIS's backend (settings.DATABASES' ENGINE "infra.db.backend"), with two savings for
the statements every web request runs: statements prepared once per connection
(`prepared_cursor`), and a health check that costs no round trip while the connection is
sound. Why and the limits: docs/internals/prepared-statements.md.
"""

from __future__ import annotations

import select
from typing import Any

import psycopg
from django.contrib.gis.db.backends.postgis.base import DatabaseWrapper as PostGISDatabaseWrapper
from django.contrib.gis.db.backends.postgis.operations import PostGISOperations
from django.db.backends.utils import CursorWrapper
from django.utils.asyncio import async_unsafe

from infra.db.django_private import PreparingCursor, cursor_wrap, health_check_passed, health_check_pending


class DatabaseOperations(PostGISOperations):
    def last_executed_query(self, cursor: Any, sql: Any, params: Any) -> str:
        # What query logging (DEBUG, tests) shows: as Django shows server-side binding.
        if isinstance(cursor, PreparingCursor):
            composed: str = self.compose_sql(sql, params)
            return composed
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
