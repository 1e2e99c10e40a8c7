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
