"""One-row reads on the hottest paths (every API request's token check, an order read),
with their SQL compiled once per process instead of once per call.

Compiling a queryset with two or three `select_related` joins costs the ORM about 0.2 ms
of CPU, more than PostgreSQL takes to run it; building the instances costs about as much
again in query cloning and bookkeeping. `OneRowQuery` compiles the queryset once (the ORM
still writes the SQL, so it follows the models), then per call runs that SQL with the new
value and builds the instances as Django's `ModelIterable` does: the same converters
(PostGIS geometries) and the same `select_related` caches. PostgreSQL too plans the
statement once per connection: it is prepared (`ze_tracking.database`). Nothing is cached
but the SQL and the plan: every call reads the database.

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
        klass_info = compiler.klass_info
        self.model = klass_info["model"]
        first, last = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        self.own = slice(first, last)
        self.attnames = [column[0].target.attname for column in compiler.select[self.own]]
        self.populators = get_related_populators(klass_info, compiler.select, using)


class OneRowQuery:
    """`make_queryset().filter(<field>=value).first()`, compiled once per process (and database
    alias). The queryset may use `select_related`; it must not use `prefetch_related`,
    annotations or ordering (it is read by a unique field)."""

    def __init__(self, make_queryset: Callable[[], QuerySet], *, field: str, using: str = "default"):
        self.make_queryset = make_queryset
        self.field = field
        self.using = using
        self._compiled: _Compiled | None = None

    def get(self, value: Any) -> Model | None:
        compiled = self._compiled
        if compiled is None:
            # Lazily: the models and the database backend must be ready. Two threads
            # compiling at once build the same thing.
            compiled = self._compiled = _Compiled(self.make_queryset(), field=self.field, using=self.using)
        connection = connections[self.using]
        params = compiled.params.copy()
        params[compiled.position] = compiled.field.get_db_prep_value(value, connection)
        with connection.prepared_cursor() as cursor:
            cursor.execute(compiled.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        if compiled.converters:
            row = list(row)
            for position, (converters, expression) in compiled.converters:
                for converter in converters:
                    row[position] = converter(row[position], expression, connection)
        instance = compiled.model.from_db(self.using, compiled.attnames, row[compiled.own])
        for populator in compiled.populators:
            populator.populate(row, instance)
        return instance


def binary_execute(sql: str, params: list | dict, *, binary_rows: bool = False):
    """Run one statement with server-side binding on Django's connection (and so inside its
    transaction): Django's own cursors bind on the client, where %b is not allowed, and
    quote every array element in Python. The cursor is wrapped like Django's, so query
    counting and execute wrappers still see it. `binary_rows`: rows come back in binary,
    read without parsing text (times, uuids, floats); Django's converters do not run."""
    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)
    if binary_rows:
        raw.format = psycopg.pq.Format.BINARY
    cursor = connection._prepare_cursor(raw)
    cursor.execute(sql, params)
    return cursor
