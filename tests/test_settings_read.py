"""Every setting the project defines is read somewhere, or gone: a name the settings define
(beyond Django's and the libraries') is read by the code or by another setting, and every
key of a dict of rules (TRACKING, THROTTLE_RATES) by the code, by its name or, for a dict an
app reads through its typed rules (tracking/rules.py), as that object's field."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from django.conf import global_settings

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "ze_tracking" / "settings"
# Where settings are read: the apps, the platform, the wiring, templates and scripts.
CODE = ["couriers", "orders", "tracking", "infra", "ze_tracking", "templates", "static/tracking"]
# Read by a library under its own name (Django's own are in global_settings).
LIBRARY_PREFIXES = ("CELERY_", "REST_", "KNOX_", "SPECTACULAR_", "WHITENOISE_", "SECURE_", "OTP_")
# Dicts of rules an app reads as typed fields: key MAX_AGE_S is `tracking_rules().max_age_s`.
TYPED_RULES = {"TRACKING"}
LIBRARY = {
    "ROOT_URLCONF",
    "ASGI_APPLICATION",
    "CHANNEL_LAYERS",
    "CONTENT_SECURITY_POLICY",
    "GDAL_LIBRARY_PATH",
    "GEOS_LIBRARY_PATH",
}


def settings_modules() -> list[Path]:
    return sorted(SETTINGS.glob("*.py"))


def defined() -> dict[str, ast.expr | None]:
    """The upper-case names the settings modules assign at their top level, with the value."""
    names: dict[str, ast.expr | None] = {}
    for path in settings_modules():
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for target in targets:
                if isinstance(target, ast.Name) and target.id.isupper():
                    names[target.id] = node.value
    return names


def read_by_settings() -> set[str]:
    """Upper-case names that a settings module reads (one setting built from another)."""
    return {
        node.id
        for path in settings_modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id.isupper()
    }


def code_text() -> str:
    paths = [path for folder in CODE for path in (ROOT / folder).rglob("*") if path.suffix in {".py", ".html", ".js"}]
    return "\n".join(
        path.read_text() for path in paths if SETTINGS not in path.parents and "migrations" not in path.parts
    )


def project_defined() -> dict[str, ast.expr | None]:
    return {
        name: value
        for name, value in defined().items()
        if not hasattr(global_settings, name) and name not in LIBRARY and not name.startswith(LIBRARY_PREFIXES)
    }


def test_every_project_setting_is_read_somewhere():
    code, by_settings = code_text(), read_by_settings()
    unread = [name for name in project_defined() if name not in by_settings and not re.search(rf"\b{name}\b", code)]
    assert project_defined(), "no project settings found"
    assert not unread, f"settings read nowhere (use them or remove them): {unread}"


def test_every_rule_of_a_settings_dict_is_read_somewhere():
    code = code_text()
    unread = [
        f"{name}[{key.value!r}]"
        for name, value in project_defined().items()
        if isinstance(value, ast.Dict)
        for key in value.keys
        if isinstance(key, ast.Constant) and isinstance(key.value, str)
        if f'"{key.value}"' not in code and f"'{key.value}'" not in code
        if not (name in TYPED_RULES and re.search(rf"\.{key.value.lower()}\b", code))
    ]
    assert not unread, f"rules read nowhere (use them or remove them): {unread}"


def test_each_settings_module_stays_short():
    long = {path.name: n for path in settings_modules() if (n := len(path.read_text().splitlines())) > 200}
    assert not long, f"settings modules over 200 lines (split them by concern): {long}"
