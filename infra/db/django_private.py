"""The one module that reaches into Django's internals: the ORM's SQL compiler and row
populators (to compile a one-row read once), the database wrapper's cursor wrapping and
health-check state, and the PostgreSQL backend's server-side binding cursor. Written
against DJANGO_VERSION: tests/test_private_api_pins.py fails when the installed version
differs, to have it checked again (tests/test_queries.py and tests/test_database_connection.py
cover what it takes over)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.backends.utils import CursorWrapper
from django.db.models import Model, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.query import get_related_populators

#: The Django version this adapter was written and tested against.
DJANGO_VERSION = "5.2.19"

# A threshold no statement reaches: only `prepare=True` prepares.
PREPARE_ON_REQUEST_ONLY = 2**31 - 1


if TYPE_CHECKING:
    # The stubs declare ServerBindingCursor without its psycopg base class.
    _BindingCursor = psycopg.Cursor[Any]
else:
    _BindingCursor = ServerBindingCursor


class PreparingCursor(_BindingCursor):
    """psycopg's server-side binding cursor, preparing every statement it executes.

    Django disables psycopg's prepared statements (`prepare_threshold` None), and psycopg
    then refuses even an explicit `prepare=True`. The threshold is set only while this
    cursor executes: everywhere else psycopg keeps no statement cache, so nothing else is
    prepared, and other statements never make it drop these (it does on a ROLLBACK
    command, which the worker's savepoints send)."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> PreparingCursor:
        connection = self.connection
        threshold, connection.prepare_threshold = connection.prepare_threshold, PREPARE_ON_REQUEST_ONLY
        try:
            return super().execute(query, params, prepare=True, **kwargs)
        finally:
            connection.prepare_threshold = threshold


# `wrapper`: Django's database wrapper, typed Any because its stubs lack the private state read here.
def cursor_wrap(wrapper: Any, raw: psycopg.Cursor[Any]) -> CursorWrapper:
    """A raw psycopg cursor wrapped as Django wraps its own (`connection.cursor()`): query
    counting, execute wrappers and debug logging see it."""
    cursor: CursorWrapper = wrapper._prepare_cursor(raw)
    return cursor


def health_check_pending(wrapper: Any) -> bool:
    """Whether Django would check this open connection before its next query
    (CONN_HEALTH_CHECKS, once per request)."""
    return wrapper.connection is not None and wrapper.health_check_enabled and not wrapper.health_check_done


def health_check_passed(wrapper: Any) -> None:
    """Mark the connection as checked for this request, as Django's own check does."""
    wrapper.health_check_done = True


class _Placeholder:
    """Stands for the looked-up value while the query is compiled; found again in its params."""


class CompiledRead:
    """A queryset's one-row read, compiled by the ORM once: its SQL and params with a slot for
    the looked-up value, and what turns a row into instances (or a dict) as Django's
    `ModelIterable` and `ValuesIterable` do: the same converters and `select_related` caches."""

    def __init__(self, queryset: QuerySet[Any, Any], *, field: str, using: str) -> None:
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
        # The stubs describe Django 6.1, whose get_related_populators also takes fetch_mode.
        self.populators = get_related_populators(klass_info, compiler.select, using)  # type: ignore[call-arg]
        # NULL only when the row is missing (a LEFT JOIN in OneRowQueries found nothing).
        self.pk_position = first + self.attnames.index(pk)

    def param(self, value: Any, connection: Any) -> Any:
        """The looked-up value as a filter on the field converts it."""
        return self.field.get_db_prep_value(value, connection)

    def build(self, row: Any, connection: Any) -> Model | dict[str, Any]:
        """The instance (with its `select_related` ones), or the dict, from a found row."""
        if self.converters:
            row = list(row)
            for position, (converters, expression) in self.converters:
                for converter in converters:
                    row[position] = converter(row[position], expression, connection)
        if self.model is None:
            return dict(zip(self.names, row, strict=True))
        instance: Model = self.model.from_db(self.using, self.attnames, row[self.own])
        for populator in self.populators:
            populator.populate(row, instance)
        return instance
