"""A library's private API (`_`-prefixed names, internal classes and hooks) is used in one
adapter module per library, written against one version of it. Each adapter names that
version; these tests fail when the installed one differs, so the adapter is read again
against the new code (and the tests of what it takes over run) before the pin moves. And no
module outside the adapters reaches for a `_`-prefixed attribute of another object."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# distribution, adapter module, its pin, what to check and which tests cover it
ADAPTERS = [
    (
        "django",
        "infra.db.django_private",
        "DJANGO_VERSION",
        "do the SQL compiler's klass_info/select/get_converters, get_related_populators, "
        "_prepare_cursor, health_check_done and ServerBindingCursor still behave as read; run "
        "tests/test_queries.py and tests/test_database_connection.py",
    ),
    (
        "celery",
        "infra.queue.celery_private",
        "CELERY_VERSION",
        "does a body that cannot be decoded still reach DeadLetterRequest.on_failure and "
        "Consumer.on_decode_error / on_invalid_task, and does Celery still reject or ack it; run "
        "tests/e2e/test_worker_fates.py",
    ),
    (
        "kombu",
        "infra.queue.kombu_private",
        "KOMBU_VERSION",
        "does a closed connection still fail with AttributeError in Channel._connparams; run tests/test_broker.py",
    ),
    (
        "celery-redbeat",
        "infra.queue.redbeat_private",
        "REDBEAT_VERSION",
        "do RedBeatScheduler.tick, _maybe_due_kwargs, the lock's build (LUA_EXTEND_TO_SCRIPT) and "
        "close still read as the Scheduler assumes; run tests/e2e/test_beat_lock.py and test_beat_outage.py",
    ),
    (
        "redis",
        "infra.queue.redbeat_private",
        "REDIS_VERSION",
        "do Lock.local.token and Lock.lua_extend still mean what the Scheduler's lock handling assumes; "
        "run tests/e2e/test_beat_lock.py and test_beat_outage.py",
    ),
]
ADAPTER_FILES = {f"{module.replace('.', '/')}.py" for _, module, _, _ in ADAPTERS}
PRODUCT = ["couriers", "orders", "tracking", "infra", "ze_tracking"]


@pytest.mark.parametrize(("distribution", "module", "pin", "check"), ADAPTERS, ids=[a[0] for a in ADAPTERS])
def test_each_adapter_runs_against_the_version_it_was_written_for(distribution, module, pin, check):
    installed = importlib.metadata.version(distribution)
    written_for = getattr(importlib.import_module(module), pin)

    assert installed == written_for, (
        f"{distribution} {installed} is not {written_for}: check {module} against it ({check}), then update {pin}"
    )


def private_attributes(source: str) -> list[tuple[int, str]]:
    """(line, expression) of every `x._name` whose `x` is not self or cls (`_meta` is
    Django's documented model API)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
            continue
        if node.attr == "_meta" or (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            continue
        found.append((node.lineno, ast.unparse(node)))
    return found


def test_no_module_outside_the_adapters_uses_a_private_attribute():
    used = [
        f"{path.relative_to(ROOT).as_posix()}:{line} {expression}"
        for package in PRODUCT
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts and path.relative_to(ROOT).as_posix() not in ADAPTER_FILES
        for line, expression in private_attributes(path.read_text())
    ]
    assert not used, "private attributes used outside the adapter modules:\n" + "\n".join(used)


def test_the_scan_sees_a_private_attribute_of_a_library_object():
    source = "def f(connection):\n    return connection._prepare_cursor(None), self._own, model._meta\n"
    assert private_attributes(source) == [(2, "connection._prepare_cursor")]
