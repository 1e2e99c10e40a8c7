"""The ports `make run` and `make test` give the local PostgreSQL and Redis (scripts/ports.sh,
sourced by scripts/setup.sh under `set -euo pipefail`)."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.processes  # bash, running the script


def ports_chosen(local, **environment: str) -> tuple[str, str]:
    script = 'set -euo pipefail; LOCAL="$1"; source scripts/ports.sh; echo "$PG_PORT $REDIS_PORT"'
    kept = {name: value for name, value in os.environ.items() if not name.startswith("ZE_")}
    result = subprocess.run(["bash", "-c", script, "ports", str(local)], cwd=ROOT, capture_output=True, text=True,
                            env=kept | environment)  # fmt: skip
    assert result.returncode == 0, result.stderr
    pg_port, redis_port = result.stdout.split()
    return pg_port, redis_port


def test_a_fresh_checkout_gets_the_default_ports(tmp_path):
    assert ports_chosen(tmp_path) == ("54329", "63799")


def test_a_checkout_set_up_before_keeps_its_ports(tmp_path):
    (tmp_path / "env").write_text(
        "export DATABASE_URL='postgis://postgres@127.0.0.1:54400/ze_tracking'\n"
        "export REDIS_URL='redis://127.0.0.1:63900/0'\n"
    )
    assert ports_chosen(tmp_path) == ("54400", "63900")


def test_ports_given_by_the_environment_win(tmp_path):
    (tmp_path / "env").write_text("export DATABASE_URL='postgis://postgres@127.0.0.1:54400/ze_tracking'\n")
    assert ports_chosen(tmp_path, ZE_PG_PORT="54500", ZE_REDIS_PORT="63500") == ("54500", "63500")
