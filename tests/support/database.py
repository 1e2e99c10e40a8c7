"""The test database seen from outside Django's connection: its URL for other processes,
connections of a test's own (to hold a lock), and who waits on a lock."""

from __future__ import annotations

import psycopg
from django.db import connection

from tests.support.waiting import wait_for


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgis://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def database_connect(*, dbname: str | None = None, autocommit: bool = False) -> psycopg.Connection:
    """A connection of the test's own to the test database (or `dbname` on its server)."""
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], password=db.get("PASSWORD") or None,
        dbname=dbname or db["NAME"], autocommit=autocommit,
    )  # fmt: skip


def lock_waiters(conn: psycopg.Connection) -> list[int]:
    """The server processes of the test database that wait on a lock."""
    conn.execute("SELECT pg_stat_clear_snapshot()")  # statistics are cached per transaction
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = %s",
        [connection.settings_dict["NAME"]],
    ).fetchall()
    return [pid for (pid,) in rows]


def lock_waiters_wait(conn: psycopg.Connection, *, message: str, count: int = 1, timeout: float = 30) -> list[int]:
    """Wait until `count` sessions of the test database wait on a lock (one that `conn`, a
    connection of the test's own, holds); their server processes."""
    return wait_for(lambda: (pids := lock_waiters(conn)) and len(pids) >= count and pids, timeout=timeout,
                    message=message)  # fmt: skip
