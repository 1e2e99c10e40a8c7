"""Every section heading of docs/ARCHITECTURE.md names code that exists: a file, and the
function or class after it in that file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "ARCHITECTURE.md"
# While the app and the infrastructure live on different branches, ZE_APP_ROOT names a
# checkout of the app to look in as well.
ROOTS = [REPO, *([Path(os.environ["ZE_APP_ROOT"])] if os.environ.get("ZE_APP_ROOT") else [])]


def _headings() -> list[str]:
    return [line for line in DOC.read_text().splitlines() if re.match(r"^#{2,3} ", line)]


def _find(path: str) -> Path | None:
    return next((root / path for root in ROOTS if (root / path).is_file()), None)


def test_the_document_has_a_section_per_question():
    assert len([h for h in _headings() if h.startswith("## ")]) >= 6


@pytest.mark.parametrize("heading", _headings())
def test_heading_names_existing_code(heading: str):
    names = re.findall(r"`([^`]+)`", heading)
    paths = [n for n in names if "/" in n or n.endswith((".py", ".sh", ".md"))]
    assert paths, f"no file named in: {heading}"
    if not (REPO / "manage.py").exists() and not any(_find(p) for p in paths) and len(ROOTS) == 1:
        pytest.skip("the app is not in this checkout (set ZE_APP_ROOT)")
    for path in paths:
        found = _find(path)
        assert found is not None, f"{path} (in: {heading})"
        for symbol in names[names.index(path) + 1:]:
            if "/" in symbol:
                break
            assert re.search(rf"\b(def|class)\s+{re.escape(symbol)}\b|^{re.escape(symbol)}\b", found.read_text(), re.M), (
                f"{symbol} not in {path}"
            )
