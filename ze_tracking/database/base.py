"""PostGIS's backend, whose health check costs no round trip while the connection is sound.

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


class DatabaseWrapper(PostGISDatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        if self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        if self._idle_socket_is_quiet():
            self.health_check_done = True
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
