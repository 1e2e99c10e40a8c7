"""The web keeps its database connection between requests (gunicorn's sync workers) and checks
it before each request's first query (CONN_HEALTH_CHECKS) without a round trip while the
connection is sound: a connection the server ended is replaced, never a failed request."""

from __future__ import annotations

import select

import psycopg
import pytest
from django.db import connection, connections

from tests.support.database import database_url
from tests.support.waiting import wait_for


@pytest.fixture
def persistent_connection(transactional_db):
    """The connection as a gunicorn worker has it: kept for a minute, checked per request."""
    before = connection.settings_dict["CONN_MAX_AGE"], connection.settings_dict["CONN_HEALTH_CHECKS"]
    connection.settings_dict["CONN_MAX_AGE"], connection.settings_dict["CONN_HEALTH_CHECKS"] = 60, True
    connection.close()
    connection.ensure_connection()
    yield connection
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"], connection.settings_dict["CONN_HEALTH_CHECKS"] = before


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def request_boundary() -> None:
    """What Django runs when a request starts (`close_old_connections`)."""
    connection.close_if_unusable_or_obsolete()


def test_a_sound_connection_is_reused_without_a_round_trip(persistent_connection, monkeypatch):
    pid = backend_pid()
    probes = []
    wrapper = type(connections["default"])
    real = wrapper.is_usable
    monkeypatch.setattr(wrapper, "is_usable", lambda self: probes.append(1) or real(self))

    for _ in range(3):
        request_boundary()
        assert backend_pid() == pid

    assert probes == []


def test_a_connection_the_server_ended_is_replaced_before_the_first_query(persistent_connection):
    pid = backend_pid()
    request_boundary()
    with psycopg.connect(database_url().replace("postgis://", "postgresql://"), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # The server's goodbye (its FATAL error, then the end of the stream) reaches the socket.
    wait_for(lambda: select.select([connection.connection.fileno()], [], [], 0)[0], message="the server's goodbye")

    assert backend_pid() != pid
