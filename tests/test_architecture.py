"""The apps depend one way: couriers <- orders <- tracking, all on the platform (infra),
which imports no app and not the wiring (ze_tracking); the wiring's settings import no app,
only its URL, ASGI and Celery modules name them. Every import counts, including one inside
a function (see "Dependency direction" in ARCHITECTURE.md). And the package list of the
README and of ARCHITECTURE.md is the tree's."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ["couriers", "orders", "tracking"]
OURS = {*APPS, "infra", "ze_tracking"}
# What each package may import of ours (besides itself).
ALLOWED = {
    "couriers": {"infra"},
    "orders": {"couriers", "infra"},
    "tracking": {"couriers", "orders", "infra"},
    "infra": set(),
    "ze_tracking": {"infra"},
}
# The wiring that names the apps: URL and websocket routing, the ASGI entry point, Celery's
# autodiscovery.
WIRING = {"ze_tracking/urls.py", "ze_tracking/asgi.py", "ze_tracking/celery.py"}


def imported_packages(source: str) -> set[tuple[int, str]]:
    """(line, top-level package) of every import in the module, at any depth."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {(node.lineno, alias.name.split(".")[0]) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add((node.lineno, node.module.split(".")[0]))
    return found


def wrong_way_imports(package: str, path: Path) -> list[str]:
    forbidden = OURS - ALLOWED[package] - {package}
    relative = path.relative_to(ROOT).as_posix()
    return [
        f"{relative}:{line} imports {imported}"
        for line, imported in sorted(imported_packages(path.read_text()))
        if imported in forbidden
    ]


def modules(package: str) -> list[Path]:
    paths = sorted((ROOT / package).rglob("*.py"))
    if package == "ze_tracking":
        paths = [p for p in paths if p.relative_to(ROOT).as_posix() not in WIRING]
    return paths


@pytest.mark.parametrize("package", [*APPS, "infra", "ze_tracking"])
def test_no_import_runs_against_the_dependency_direction(package):
    paths = modules(package)
    assert paths, f"no modules found in {package}/"
    wrong = [message for path in paths for message in wrong_way_imports(package, path)]
    assert not wrong, "imports against couriers <- orders <- tracking <- ze_tracking, all over infra:\n" + "\n".join(
        wrong
    )


def test_the_check_sees_imports_hidden_in_functions():
    source = "def f():\n    from tracking.services.ingest import ping_batch_record\n    import orders.models\n"
    assert {name for _, name in imported_packages(source)} == {"tracking", "orders"}


# Each table is read and written by the app that owns it (its label prefixes the table's
# name): another app asks the owner through a function of the owner's. Migrations are left
# out: their DDL is the owner's by definition.
OWNERS = {f"{app}_": app for app in APPS}
# Keywords that name a table after them, upper case as the project writes SQL (prose in
# docstrings says "from" in lower case).
TABLE_NAMED = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE)\s+\"?([a-z_][a-z0-9_]*)")
# (module, table) pairs allowed to cross, each with its reason. None today.
FOREIGN_TABLES_ALLOWED: set[tuple[str, str]] = set()


def app_modules(app: str) -> list[Path]:
    return [p for p in sorted((ROOT / app).rglob("*.py")) if "migrations" not in p.parts]


def tables_in_sql(source: str) -> set[tuple[int, str]]:
    """(line, table) of every table a string literal of the module names after FROM, JOIN,
    INTO or UPDATE, if it belongs to one of the apps."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for table in TABLE_NAMED.findall(node.value):
                if any(table.startswith(prefix) for prefix in OWNERS):
                    found.add((node.lineno, table))
    return found


def table_owner(table: str) -> str:
    return next(app for prefix, app in OWNERS.items() if table.startswith(prefix))


@pytest.mark.parametrize("app", APPS)
def test_raw_sql_names_only_its_own_apps_tables(app):
    wrong = [
        f"{path.relative_to(ROOT).as_posix()}:{line} names {table} ({table_owner(table)}'s)"
        for path in app_modules(app)
        for line, table in sorted(tables_in_sql(path.read_text()))
        if table_owner(table) != app and (path.relative_to(ROOT).as_posix(), table) not in FOREIGN_TABLES_ALLOWED
    ]
    assert not wrong, "raw SQL reading another app's table:\n" + "\n".join(wrong)


def test_the_check_sees_tables_in_every_clause():
    source = 'SQL = """\nSELECT 1 FROM orders_order o JOIN "tracking_ping" p ON TRUE\n"""\n'
    source += 'X = "INTO couriers_courier"\nY = "UPDATE tracking_ping"\nZ = "read from orders_order in prose"\n'
    assert {table for _, table in tables_in_sql(source)} == {"orders_order", "tracking_ping", "couriers_courier"}


def select_related_paths(source: str) -> set[tuple[int, str]]:
    """(line, path) of every `select_related("a__b")` argument and `list_select_related` item."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        strings: list[ast.expr] = []
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "select_related":
            strings = node.args
        elif isinstance(node, ast.Assign) and "list_select_related" in {getattr(t, "id", None) for t in node.targets}:
            strings = getattr(node.value, "elts", [])
        found |= {(s.lineno, s.value) for s in strings if isinstance(s, ast.Constant) and isinstance(s.value, str)}
    return found


def apps_reached(path: str) -> set[str]:
    """The app labels of the models each step of a `select_related` path may join: every one
    of our models' relations with that step's name (they are few and named alike)."""
    from django.apps import apps

    relations: dict[str, set[str]] = {}
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if field.is_relation and field.related_model is not None:
                name = field.get_accessor_name() if field.auto_created and not field.concrete else field.name
                relations.setdefault(name, set()).add(field.related_model._meta.app_label)
    return {label for step in path.split("__") for label in relations.get(step, set())}


@pytest.mark.parametrize("app", APPS)
def test_select_related_joins_only_its_own_apps_and_those_it_may_import(app):
    allowed = {app, *ALLOWED[app], "auth"}  # auth: a courier's user, Django's own table
    wrong = [
        f"{p.relative_to(ROOT).as_posix()}:{line} select_related({path!r}) joins {sorted(apps_reached(path) - allowed)}"
        for p in app_modules(app)
        for line, path in sorted(select_related_paths(p.read_text()))
        if apps_reached(path) - allowed
    ]
    assert not wrong, "joins of a later app's tables:\n" + "\n".join(wrong)


def test_the_check_resolves_select_related_paths_to_apps():
    assert apps_reached("order__courier") == {"orders", "couriers"}
    assert apps_reached("last_location") == {"tracking"}
    source = 'Order.objects.select_related("courier", "last_location")\nlist_select_related = ["user"]\n'
    assert {path for _, path in select_related_paths(source)} == {"courier", "last_location", "user"}


# One way to run raw SQL (ARCHITECTURE.md, "One way to run raw SQL"): Django's cursor, opened in a `with`
# (`connection.cursor()`, `connections[alias].cursor()`, `connection.chunked_cursor()` for a
# read in chunks), so every statement is logged, counted, wrapped and its errors translated
# like the ORM's. What needs the driver itself (binary parameters, prepared one-row reads)
# is in infra/db/, which app code calls (`binary_execute`, `OneRowQuery`).
DRIVER_PACKAGE = "infra/db/"
# psycopg's parameter types (Jsonb for a binary parameter) are values, not a way to run SQL.
DRIVER_VALUES = "psycopg.types"
OTHER_WAYS = {
    "raw": "Manager.raw()",
    "extra": "QuerySet.extra()",
    "create_cursor": "a driver cursor",
    "prepared_cursor": "a prepared cursor (infra.db.queries)",
}


def raw_sql_outside_the_one_way(source: str) -> list[tuple[int, str]]:
    """(line, what) of every way of running SQL in the module other than Django's cursor in a
    `with`."""
    tree = ast.parse(source)
    in_with = {id(item.context_expr) for node in ast.walk(tree) if isinstance(node, ast.With) for item in node.items}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"imports {a.name}") for a in node.names if a.name.split(".")[0] == "psycopg"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "psycopg":
            if not (node.module + ".").startswith(DRIVER_VALUES + "."):
                found.append((node.lineno, f"imports from {node.module}"))
        elif isinstance(node, ast.Attribute) and node.attr == "connection":
            owner = node.value.value if isinstance(node.value, ast.Subscript) else node.value
            if isinstance(owner, ast.Name) and owner.id in ("connection", "connections"):
                found.append((node.lineno, "reaches the driver's connection under Django's"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("cursor", "chunked_cursor") and id(node) not in in_with:
                found.append((node.lineno, "opens a cursor outside a `with` (left open)"))
            elif node.func.attr in OTHER_WAYS:
                found.append((node.lineno, f"runs SQL through {OTHER_WAYS[node.func.attr]}"))
        elif isinstance(node, ast.Name) and node.id == "RawSQL":
            found.append((node.lineno, "runs SQL through RawSQL"))
    return found


def modules_outside_the_driver_package() -> list[Path]:
    """Every module of the apps (migrations included), the platform and the wiring, but
    infra/db/."""
    paths = [p for package in sorted(OURS) for p in sorted((ROOT / package).rglob("*.py"))]
    return [p for p in paths if not p.relative_to(ROOT).as_posix().startswith(DRIVER_PACKAGE)]


def test_raw_sql_runs_on_djangos_cursor_or_through_infra_db():
    wrong = [
        f"{path.relative_to(ROOT).as_posix()}:{line} {what}"
        for path in modules_outside_the_driver_package()
        for line, what in raw_sql_outside_the_one_way(path.read_text())
    ]
    assert not wrong, "raw SQL run another way than Django's cursor or infra/db:\n" + "\n".join(wrong)


def test_the_check_sees_every_other_way_of_running_sql():
    source = (
        "import psycopg\nfrom psycopg import sql\nfrom psycopg.types.json import Jsonb\n"
        "with connection.cursor() as c, connections['x'].cursor() as d, connection.chunked_cursor() as e:\n"
        "    c.execute('SELECT 1')\n"
        "connection.cursor().execute('SELECT 1')\n"
        "connection.connection.cursor(name='x')\n"
        "Ping.objects.raw('SELECT 1')\n"
        "with schema_editor.connection.cursor() as f:\n"
        "    pass\n"
    )
    assert [line for line, _ in sorted(raw_sql_outside_the_one_way(source))] == [1, 2, 6, 7, 7, 8]


# One placeholder style in raw SQL: positional (%s, and %b for a binary parameter), as most
# of the project's statements are written.
NAMED_PLACEHOLDER = re.compile(r"%\(\w+\)[sb]")
SQL_STATEMENT = re.compile(r"\b(?:SELECT|INSERT|UPDATE|DELETE)\b")


@pytest.mark.parametrize("package", sorted(OURS))
def test_raw_sql_uses_positional_placeholders(package):
    named = [
        f"{path.relative_to(ROOT).as_posix()}:{node.lineno}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if SQL_STATEMENT.search(node.value) and NAMED_PLACEHOLDER.search(node.value)
    ]
    assert not named, "named placeholders in raw SQL:\n" + "\n".join(named)


# Each app's rules are read through one typed module of the app (tracking/rules.py builds
# `tracking_rules()` from settings.TRACKING and checks it), never as raw dict lookups.
RULES_MODULES = {"TRACKING": "tracking/rules.py"}
# (module, setting) pairs allowed to read a dict of rules directly, each with its reason:
# the device-time window every API input is held to (orders' events too) sits in the
# platform's serializer field, which may not import tracking.
RAW_RULES_ALLOWED = {("infra/http/serializers.py", "TRACKING")}


def rules_dicts_read(source: str) -> set[tuple[int, str]]:
    """(line, name) of every `settings.<NAME>` read of a dict of rules in the module."""
    return {
        (node.lineno, node.attr)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr in RULES_MODULES
        if isinstance(node.value, ast.Name) and node.value.id == "settings"
    }


def test_rules_are_read_through_their_apps_rules_module():
    wrong = [
        f"{relative}:{line} reads settings.{name} (use {RULES_MODULES[name]})"
        for package in [*APPS, "infra", "ze_tracking"]
        for path in app_modules(package)
        if "settings" not in path.relative_to(ROOT).parts[1:2]
        for relative in [path.relative_to(ROOT).as_posix()]
        for line, name in sorted(rules_dicts_read(path.read_text()))
        if relative != RULES_MODULES[name] and (relative, name) not in RAW_RULES_ALLOWED
    ]
    assert not wrong, "rules read around their typed module:\n" + "\n".join(wrong)


def test_the_check_sees_a_rules_dict_read():
    source = 'from django.conf import settings\nx = settings.TRACKING["MAX_AGE_S"]\nrules = settings.TRACKING\n'
    assert rules_dicts_read(source) == {(2, "TRACKING"), (3, "TRACKING")}


# A module a newcomer reads in one sitting; past that, split it by sub-domain (STYLE.md).
MAX_MODULE_LINES = 300


@pytest.mark.parametrize("package", [*APPS, "infra", "ze_tracking"])
def test_no_module_is_longer_than_300_lines(package):
    long = [
        f"{path.relative_to(ROOT).as_posix()}: {lines} lines"
        for path in app_modules(package)
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(long)


# Django's own sub-packages, named by convention, and the suites that mirror the apps.
UNLISTED = {"migrations", "management", "commands"}


def packages_in_tree() -> set[str]:
    """Every Python package of the product (a folder with an __init__.py), top level and
    nested; deploy/ is its own project (deploy/README.md) and tests/ mirrors the apps."""
    found = set()
    for init in ROOT.rglob("__init__.py"):
        relative = init.parent.relative_to(ROOT)
        parts = relative.parts
        if parts[0].startswith(".") or parts[0] == "deploy" or UNLISTED & set(parts):
            continue
        if parts[0] == "tests" and len(parts) > 1:
            continue
        found.add(relative.as_posix())
    return found


def packages_listed(document: str) -> set[str]:
    """The packages of a document's layout list: one line each, `- `name/` ...`."""
    text = (ROOT / document).read_text()
    section = text.split("<!-- layout -->")[1].split("<!-- /layout -->")[0]
    return set(re.findall(r"^- `([\w/]+)/`", section, flags=re.MULTILINE))


@pytest.mark.parametrize("document", ["README.md", "docs/ARCHITECTURE.md"])
def test_the_documented_layout_lists_every_package(document):
    tree, listed = packages_in_tree(), packages_listed(document)
    assert listed == tree, (
        f"{document}'s layout list differs from the tree: missing {sorted(tree - listed)}, gone {sorted(listed - tree)}"
    )
