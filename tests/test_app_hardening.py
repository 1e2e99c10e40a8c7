"""Small edges of the app: the readiness probe is throttled per address, courier usernames
pass Django's username rules, production answers only the hosts it is given, and the
simulator (which makes its own staff user) is not shipped."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, override_settings

from tests.support import ROOT


@pytest.mark.django_db
def test_readyz_is_throttled_per_address():
    with override_settings(THROTTLE_RATES={**settings.THROTTLE_RATES, "probe_address": "3/min"}):
        statuses = [Client(REMOTE_ADDR="198.51.100.5").get("/readyz").status_code for _ in range(4)]
        other = Client(REMOTE_ADDR="198.51.100.6").get("/readyz").status_code

    assert statuses == [200, 200, 200, 429]
    assert other == 200


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["ana souza", "<script>", "ana/souza", "ana\x00", "ana\u200bsouza"])
def test_a_courier_username_must_pass_djangos_username_rules(staff_api, username):
    response = staff_api.post(
        "/api/v1/couriers", {"name": "Ana Souza", "username": username, "password": "s3cret-pass-123"}, format="json"
    )

    assert response.status_code == 400, response.content
    assert "username" in response.json()


@pytest.mark.django_db
def test_a_courier_username_is_stored_normalized_and_its_spellings_are_taken(staff_api):
    def create(username):
        body = {"name": "Ana Souza", "username": username, "password": "s3cret-pass-123"}
        return staff_api.post("/api/v1/couriers", body, format="json")

    assert create("ａｎａ").json()["username"] == "ana"  # NFKC, as Django's forms store it
    assert create("𝐚𝐧𝐚").status_code == 400


def settings_in_a_fresh_process(**env) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in ("DJANGO_DEBUG", "DJANGO_ALLOWED_HOSTS")}
    environment["DJANGO_SETTINGS_MODULE"] = "ze_tracking.settings"
    code = "import django; django.setup(); from django.conf import settings; print(settings.ALLOWED_HOSTS)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**environment, **env},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.processes
def test_production_answers_no_host_it_was_not_given():
    assert settings_in_a_fresh_process(DJANGO_DEBUG="0") == "[]"
    assert settings_in_a_fresh_process(DJANGO_DEBUG="0", DJANGO_ALLOWED_HOSTS="ze.example") == "['ze.example']"
    assert "localhost" in settings_in_a_fresh_process(DJANGO_DEBUG="1")


def bundle_files(tmp_path: Path, role: str) -> list[str]:
    out = tmp_path / f"{role}.zip"
    subprocess.run(["bash", "deploy/eb/bundle.sh", role, str(out)], cwd=ROOT, check=True, timeout=120)
    return zipfile.ZipFile(out).namelist()


@pytest.mark.processes
@pytest.mark.parametrize("role", ["web", "worker", "scheduler"])
def test_the_production_bundle_has_no_simulator(tmp_path, role):
    files = bundle_files(tmp_path, role)

    assert "manage.py" in files and "tracking/models.py" in files
    shipped_code = [f for f in files if not f.startswith("tests/")]
    assert [f for f in shipped_code if "simulat" in f] == []


def test_nothing_shipped_imports_the_simulator():
    """The bundle leaves it out: a module that imports it would fail in production."""
    shipped = [
        p
        for p in ROOT.glob("*/**/*.py")
        if p.parts[len(ROOT.parts)] in ("couriers", "orders", "tracking", "infra", "ze_tracking")
    ]
    importers = [
        str(p.relative_to(ROOT)) for p in shipped
        if "simulat" not in str(p.relative_to(ROOT)) and "tracking.simulator" in p.read_text()
    ]  # fmt: skip

    assert importers == []
    assert not any("simulat" in app for app in settings.INSTALLED_APPS)
