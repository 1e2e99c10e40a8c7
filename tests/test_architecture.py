"""The apps depend one way: couriers <- orders <- tracking, and the project core
(ze_tracking) imports no app except in the files whose job is to wire them. Every import
counts, including one inside a function (see "Dependency direction" in ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ["couriers", "orders", "tracking"]
# What each package may import of ours (besides itself and the core).
ALLOWED = {
    "couriers": set(),
    "orders": {"couriers"},
    "tracking": {"couriers", "orders"},
    "ze_tracking": set(),
}
# The core's wiring: URL and websocket routing, the ASGI entry point, Celery's autodiscovery.
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
    ours = {*APPS, "ze_tracking"}
    forbidden = ours - ALLOWED[package] - {package, "ze_tracking"}
    if package == "ze_tracking":
        forbidden = set(APPS)
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


@pytest.mark.parametrize("package", [*APPS, "ze_tracking"])
def test_no_import_runs_against_the_dependency_direction(package):
    paths = modules(package)
    assert paths, f"no modules found in {package}/"
    wrong = [message for path in paths for message in wrong_way_imports(package, path)]
    assert not wrong, "imports against couriers <- orders <- tracking (core imports no app):\n" + "\n".join(wrong)


def test_the_check_sees_imports_hidden_in_functions():
    source = "def f():\n    from tracking.services.ingest import ping_batch_record\n    import orders.models\n"
    assert {name for _, name in imported_packages(source)} == {"tracking", "orders"}
