"""The database connection takes its TLS mode and CA bundle from the environment that
deploy/ sets (DATABASE_SSLMODE=verify-full, DATABASE_SSLROOTCERT=<RDS bundle>)."""

from __future__ import annotations

import json
import os

import pytest

from tests.support.processes import python_run

pytestmark = pytest.mark.processes  # each probe is a fresh Python process

PROBE = """
import django, json
django.setup()
from django.conf import settings
from django.db import connection
options = settings.DATABASES["default"].get("OPTIONS", {})
try:
    connection.ensure_connection()
    outcome = "connected"
except Exception as exc:
    outcome = str(exc)
print(json.dumps({"options": options, "outcome": outcome}))
"""


def _probe(**env: str) -> dict:
    run = python_run(PROBE, env={**os.environ, "DJANGO_SETTINGS_MODULE": "ze_tracking.settings", **env})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    "DATABASE_URL" not in os.environ or "sslmode" in os.environ.get("DATABASE_URL", ""),
    reason="needs the local database, reached without TLS",
)
def test_verify_full_refuses_a_server_that_cannot_prove_its_identity(tmp_path):
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("")
    probe = _probe(DATABASE_SSLMODE="verify-full", DATABASE_SSLROOTCERT=str(bundle))
    assert {k: probe["options"].get(k) for k in ("sslmode", "sslrootcert")} == {
        "sslmode": "verify-full", "sslrootcert": str(bundle)}  # fmt: skip
    # The local server offers no TLS: verify-full must refuse it rather than fall back.
    assert probe["outcome"] != "connected"
    assert "SSL" in probe["outcome"] or "ssl" in probe["outcome"]


def test_without_the_variables_the_connection_is_as_before():
    probe = _probe()
    assert "sslmode" not in probe["options"] and "sslrootcert" not in probe["options"]
    assert probe["outcome"] == "connected"


def test_a_connection_to_a_vanished_server_fails_in_seconds_not_hours():
    # After a failover the old writer's address may stop answering without a reset: a
    # bounded connect and TCP keepalives end such a connection instead of the kernel's 2 h.
    probe = _probe()
    assert probe["options"]["connect_timeout"] <= 10
    assert probe["options"]["keepalives"] == 1
    idle, interval, count = (probe["options"][f"keepalives_{k}"] for k in ("idle", "interval", "count"))
    assert idle + interval * count <= 120
