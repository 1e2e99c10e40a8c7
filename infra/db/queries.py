"""One-row reads on the hottest paths (every API request's token check, an order read), with
their SQL compiled once per process and prepared once per connection; every call still
reads the database. `OneRowQueries` runs several in one round trip; `binary_execute` runs
the worker's hand-written batch statements. How: docs/internals/compiled-reads.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import psycopg
from django.db import connection, connections
from django.db.backends.utils import CursorWrapper
from django.db.models import QuerySet

from infra.db.django_private import CompiledRead, PreparingCursor, cursor_wrap

if TYPE_CHECKING:
    from infra.db.backend.base import DatabaseWrapper


class OneRowQuery:
    """`make_queryset().filter(<field>=value).first()`, compiled once per process (and database
    alias). The queryset may use `select_related`, or be a `values()` queryset (annotations
    included) that selects the primary key; it must not use `prefetch_related` or ordering
    (it is read by a unique field)."""

    def __init__(self, make_queryset: Callable[[], QuerySet[Any, Any]], *, field: str, using: str = "default") -> None:
        self.make_queryset = make_queryset
        self.field = field
        self.using = using
        self._compiled: CompiledRead | None = None

    def compiled(self) -> CompiledRead:
        compiled = self._compiled
        if compiled is None:
            # Lazily: the models and the database backend must be ready. Two threads
            # compiling at once build the same thing.
            compiled = self._compiled = CompiledRead(self.make_queryset(), field=self.field, using=self.using)
        return compiled

    def get(self, value: Any) -> Any:
        """The instance (a dict for a values() queryset), or None."""
        compiled = self.compiled()
        connection = cast("DatabaseWrapper", connections[self.using])  # settings.DATABASES' ENGINE
        params = compiled.params.copy()
        params[compiled.position] = compiled.param(value, connection)
        with connection.prepared_cursor() as cursor:
            cursor.execute(compiled.sql, params)
            row = cursor.fetchone()
        return None if row is None else compiled.build(row, connection)


class OneRowQueries:
    """Several `OneRowQuery` reads in one statement, one round trip instead of one each:
    `OneRowQueries(a, b).get(x, y)` is `(a.get(x), b.get(y))`. Each read keeps its own SQL
    (and its LIMIT 1), LEFT JOINed to a one-row constant: a missing row is None and leaves
    the others. Compiled once and prepared, as `OneRowQuery`; all on one database alias."""

    def __init__(self, *queries: OneRowQuery) -> None:
        if len({query.using for query in queries}) != 1:
            raise ValueError("OneRowQueries reads from one database.")
        self.queries = queries
        self.using = queries[0].using
        self._sql: str | None = None

    def get(self, *values: Any) -> tuple[Any, ...]:
        compiled = [query.compiled() for query in self.queries]
        if self._sql is None:
            columns = ", ".join(f'"read{i}".*' for i in range(len(compiled)))
            reads = " ".join(f'LEFT JOIN ({c.sql}) AS "read{i}" ON TRUE' for i, c in enumerate(compiled))
            self._sql = f'SELECT {columns} FROM (SELECT 1) AS "one" {reads}'
        connection = cast("DatabaseWrapper", connections[self.using])
        params: list[Any] = []
        for c, value in zip(compiled, values, strict=True):
            own = c.params.copy()
            own[c.position] = c.param(value, connection)
            params += own
        with connection.prepared_cursor() as cursor:
            cursor.execute(self._sql, params)
            row = cursor.fetchone()
        assert row is not None  # one row: the LEFT JOINs keep the constant's
        found: list[Any] = []
        start = 0
        for c in compiled:
            part = row[start : start + c.width]
            start += c.width
            found.append(None if part[c.pk_position] is None else c.build(part, connection))
        return tuple(found)


def binary_execute(sql: str, params: list[Any], *, binary_rows: bool = False) -> CursorWrapper:
    """Run one statement with server-side binding on Django's connection (and so inside its
    transaction): Django's own cursors bind on the client, where %b is not allowed, and
    quote every array element in Python. The statement is prepared (planned once per
    connection). The cursor is wrapped like Django's, so query counting and
    execute wrappers still see it. `binary_rows`: rows come back in binary,
    read without parsing text (times, uuids, floats); Django's converters do not run."""
    connection.ensure_connection()
    raw = PreparingCursor(connection.connection)
    if binary_rows:
        raw.format = psycopg.pq.Format.BINARY
    cursor = cursor_wrap(connection, raw)
    cursor.execute(sql, params)
    return cursor
