"""A locked supply chain: every install takes exact versions with their sha256, and every
download the instances make is checked against a pinned hash."""

from __future__ import annotations

import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKS = {
    ROOT / "requirements/base.in": ROOT / "requirements/base.txt",
    ROOT / "requirements/local.in": ROOT / "requirements/local.txt",
    ROOT / "requirements/production.in": ROOT / "requirements/production.txt",
    ROOT / "requirements/deploy.in": ROOT / "requirements/deploy.txt",
    ROOT / "requirements/tools.in": ROOT / "requirements/tools.txt",
    ROOT / "deploy/requirements-checkov.in": ROOT / "deploy/requirements-checkov.txt",
    ROOT / "deploy/eb/geo-wheels.in": ROOT / "deploy/eb/geo-wheels.txt",
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#\\]+)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _direct_pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("-r "):
            pins.update(_direct_pins(path.parent / line[3:].strip()))
        elif m := PIN.match(line):
            pins[_norm(m[1])] = m[2]
        elif line and not line.startswith("#"):
            raise AssertionError(f"{path.name}: not an exact pin: {line!r}")
    return pins


def _locked(path: Path) -> dict[str, list[str]]:
    """name -> the hashes of its entries (an entry is a pin and its continuation lines)."""
    entries: dict[str, list[str]] = {}
    name = None
    for line in path.read_text().splitlines():
        if m := PIN.match(line):
            name = _norm(m[1])
            entries.setdefault(name, []).append(line)
        elif line.startswith("    --hash=sha256:") and name:
            entries[name].append(line)
    return entries


def test_every_file_in_a_lock_is_pinned_with_sha256():
    for lock in LOCKS.values():
        entries = _locked(lock)
        assert entries, lock
        for name, lines in entries.items():
            assert any("--hash=sha256:" in line for line in lines), (lock.name, name)
        # Anything that is not a pin, a hash, an option or a comment would install unhashed.
        for line in lock.read_text().splitlines():
            assert not line or line.startswith(("#", "    ")) or PIN.match(line), (lock.name, line)


@pytest.mark.parametrize("source", list(LOCKS), ids=lambda p: p.name)
def test_every_direct_pin_is_in_its_lock_at_the_same_version(source):
    """Fails when an .in file was edited (a merge, say) and `make lock` was not run."""
    locked = LOCKS[source].read_text()
    for name, version in _direct_pins(source).items():
        assert re.search(rf"^{re.escape(name)}(\[[^\]]*\])?=={re.escape(version)}\b", locked, re.M | re.I), (
            f"{source.name} pins {name}=={version} but {LOCKS[source].name} does not: run `make lock`"
        )


def test_every_install_requires_hashes():
    assert "--require-hashes" in (ROOT / "requirements.txt").read_text().splitlines()
    assert "-r requirements/production.txt" in (ROOT / "requirements.txt").read_text()
    for path in ("scripts/setup.sh", "scripts/tools.sh", "deploy/deploy.mk", "deploy/eb/release-database.sh"):
        for line in (ROOT / path).read_text().splitlines():
            if "pip install" in line and not line.lstrip().startswith("#"):
                assert "--require-hashes" in line, (path, line)


def _wheel(directory: Path, filename: str, name: str, version: str, libs: dict[str, bytes]) -> None:
    """A well-formed wheel whose name and metadata are right and whose content is not."""
    dist = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(directory / filename, "w") as zf:
        zf.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-manylinux_2_28_x86_64\n")
        zf.writestr(f"{dist}/RECORD", "")
        for path, data in libs.items():
            zf.writestr(path, data)


def test_geo_hook_refuses_wheels_that_do_not_match_the_pinned_hashes(tmp_path):
    pins = _direct_pins(ROOT / "deploy/eb/geo-wheels.in")
    index = tmp_path / "index"
    index.mkdir()
    # Look-alikes that would install fine without the hash check: same names, same layout.
    arch = os.uname().machine
    _wheel(index, f"pyogrio-{pins['pyogrio']}-cp311-cp311-manylinux_2_28_{arch}.whl", "pyogrio", pins["pyogrio"],
           {"pyogrio.libs/libgdal-0000.so.1": b"not gdal", "pyogrio/proj_data/proj.db": b"",
            "pyogrio/gdal_data/header.dxf": b""})
    _wheel(index, f"shapely-{pins['shapely']}-cp311-cp311-manylinux_2_28_{arch}.whl", "shapely", pins["shapely"],
           {"shapely.libs/libgeos_c-0000.so.1": b"not geos"})
    geo = tmp_path / "geo"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(index), "ZE_GEO_DIR": str(geo),
           "PIP_CONFIG_FILE": os.devnull}
    run = subprocess.run(["bash", ".platform/hooks/prebuild/10_geo_libraries.sh"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0, run.stdout + run.stderr
    assert "hash" in run.stderr.lower(), run.stderr
    assert not (geo / "lib").exists()


def _rds_ca_run(tmp_path: Path, served: bytes) -> subprocess.CompletedProcess:
    """deploy/eb/rds_ca.sh with a `curl` that serves `served`, installing into tmp_path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (tmp_path / "served.pem").write_bytes(served)
    curl = bin_dir / "curl"
    curl.write_text(f'#!/bin/sh\nwhile [ "$1" != "-o" ]; do shift; done\ncp "{tmp_path}/served.pem" "$2"\n')
    curl.chmod(0o755)
    script = (ROOT / "deploy/eb/rds_ca.sh").read_text().replace("DEST=/opt/ze-rds/", f"DEST={tmp_path}/rds/")
    (tmp_path / "rds_ca.sh").write_text(script)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(["bash", str(tmp_path / "rds_ca.sh")], env=env, capture_output=True, text=True, timeout=60)


def test_rds_ca_bundle_that_does_not_match_the_pinned_hash_is_refused(tmp_path):
    run = _rds_ca_run(tmp_path, b"-----BEGIN CERTIFICATE-----\nnot the RDS bundle\n-----END CERTIFICATE-----\n")
    assert run.returncode != 0
    assert "sha256" in run.stderr
    assert not (tmp_path / "rds/global-bundle.pem").exists()


def test_rds_ca_bundle_path_is_the_one_the_app_is_given():
    from ze_infra.compute import RDS_CA_BUNDLE

    assert f"DEST={RDS_CA_BUNDLE}" in (ROOT / "deploy/eb/rds_ca.sh").read_text()
    assert "bash deploy/eb/rds_ca.sh" in (ROOT / "deploy/eb/release-database.sh").read_text()
    assert "deploy/eb/rds_ca.sh" in (ROOT / ".platform/hooks/prebuild/20_rds_ca.sh").read_text()
