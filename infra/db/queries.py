"""One-row reads on the hottest paths (every API request's token check, an order read),
with their SQL compiled once per process instead of once per call.

Compiling a queryset with two or three `select_related` joins costs the ORM about 0.2 ms
of CPU, more than PostgreSQL takes to run it; building the instances costs about as much
again in query cloning and bookkeeping. `OneRowQuery` compiles the queryset once (the ORM
still writes the SQL, so it follows the models), then per call runs that SQL with the new
value and builds the instances as Django's `ModelIterable` does: the same converters
(PostGIS geometries) and the same `select_related` caches. PostgreSQL too plans the
statement once per connection: it is prepared (`infra.db.backend`). Nothing is cached
but the SQL and the plan: every call reads the database.

A `values()` queryset reads a dict instead, as `ValuesIterable` makes it: no model
instances, only the columns named. `OneRowQueries` runs several such reads in one
statement: one round trip to PostgreSQL instead of one each.

`binary_execute` runs the worker's hand-written batch statements (arrays in, binary rows out).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from django.db import connection, connections
from django.db.models import Model, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.query import get_related_populators

from infra.db.backend.base import PreparingCursor


class _Placeholder:
    """Stands for the looked-up value while the query is compiled; found again in its params."""


class _Compiled:
    def __init__(self, queryset: QuerySet, *, field: str, using: str):
        placeholder = _Placeholder()
        # RawSQL: the placeholder reaches the params untouched (a value would be converted).
        compiler = queryset.filter(**{field: RawSQL("%s", (placeholder,))})[:1].query.get_compiler(using=using)
        self.sql, params = compiler.as_sql()
        self.params = list(params)
        self.position = next(i for i, param in enumerate(self.params) if param is placeholder)
        self.field = queryset.model._meta.get_field(field)
        self.using = using
        # Column position -> (converters, expression), as the compiler applies them.
        self.converters = list(compiler.get_converters([column[0] for column in compiler.select]).items())
        self.width = len(compiler.select)
        pk = queryset.model._meta.pk.attname
        query = compiler.query
        if not query.default_cols:
            # values(): the names ValuesIterable gives the columns.
            self.names = list(query.selected or [*query.extra_select, *query.values_select, *query.annotation_select])
            if pk not in self.names:
                raise ValueError(f"A values() read selects the primary key ({pk}): it tells a missing row.")
            self.model = None
            self.pk_position = self.names.index(pk)
            return
        klass_info = compiler.klass_info
        self.model = klass_info["model"]
        first, last = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        self.own = slice(first, last)
        self.attnames = [column[0].target.attname for column in compiler.select[self.own]]
        self.populators = get_related_populators(klass_info, compiler.select, using)
        # NULL only when the row is missing (a LEFT JOIN in OneRowQueries found nothing).
        self.pk_position = first + self.attnames.index(pk)

    def param(self, value: Any, connection) -> Any:
        """The looked-up value as a filter on the field converts it."""
        return self.field.get_db_prep_value(value, connection)

    def build(self, row, connection) -> Model | dict[str, Any]:
        """The instance (with its `select_related` ones), or the dict, from a found row."""
        if self.converters:
            row = list(row)
            for position, (converters, expression) in self.converters:
                for converter in converters:
                    row[position] = converter(row[position], expression, connection)
        if self.model is None:
            return dict(zip(self.names, row, strict=True))
        instance = self.model.from_db(self.using, self.attnames, row[self.own])
        for populator in self.populators:
            populator.populate(row, instance)
        return instance


class OneRowQuery:
    """`make_queryset().filter(<field>=value).first()`, compiled once per process (and database
    alias). The queryset may use `select_related`, or be a `values()` queryset (annotations
    included) that selects the primary key; it must not use `prefetch_related` or ordering
    (it is read by a unique field)."""

    def __init__(self, make_queryset: Callable[[], QuerySet], *, field: str, using: str = "default"):
        self.make_queryset = make_queryset
        self.field = field
        self.using = using
        self._compiled: _Compiled | None = None

    def compiled(self) -> _Compiled:
        compiled = self._compiled
        if compiled is None:
            # Lazily: the models and the database backend must be ready. Two threads
            # compiling at once build the same thing.
            compiled = self._compiled = _Compiled(self.make_queryset(), field=self.field, using=self.using)
        return compiled

    def get(self, value: Any) -> Any:
        """The instance (a dict for a values() queryset), or None."""
        compiled = self.compiled()
        connection = connections[self.using]
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

    def __init__(self, *queries: OneRowQuery):
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
        connection = connections[self.using]
        params = []
        for c, value in zip(compiled, values, strict=True):
            own = c.params.copy()
            own[c.position] = c.param(value, connection)
            params += own
        with connection.prepared_cursor() as cursor:
            cursor.execute(self._sql, params)
            row = cursor.fetchone()
        found, start = [], 0
        for c in compiled:
            part = row[start : start + c.width]
            start += c.width
            found.append(None if part[c.pk_position] is None else c.build(part, connection))
        return tuple(found)


def binary_execute(sql: str, params: list | dict, *, binary_rows: bool = False):
    """Run one statement with server-side binding on Django's connection (and so inside its
    transaction): Django's own cursors bind on the client, where %b is not allowed, and
    quote every array element in Python. The statement is prepared (planned once per
    connection): planning the worker's statements over the partitioned ping table took about
    a third of a batch's time. The cursor is wrapped like Django's, so query counting and
    execute wrappers still see it. `binary_rows`: rows come back in binary,
    read without parsing text (times, uuids, floats); Django's converters do not run."""
    connection.ensure_connection()
    raw = PreparingCursor(connection.connection)
    if binary_rows:
        raw.format = psycopg.pq.Format.BINARY
    cursor = connection._prepare_cursor(raw)
    cursor.execute(sql, params)
    return cursor
