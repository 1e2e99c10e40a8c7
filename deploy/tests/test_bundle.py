"""The source bundle's own configuration (.ebextensions): what every instance installs."""

from __future__ import annotations

import getpass
import grp
import logging.handlers
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EBEXTENSIONS = ROOT / ".ebextensions"
METRICS_LOG = "/var/log/ze-tracking/metrics.log"


def _config(name: str) -> dict:
    return yaml.safe_load((EBEXTENSIONS / name).read_text())


def _files() -> dict[str, dict]:
    """Every file the bundle's configuration writes on an instance, by path."""
    files: dict[str, dict] = {}
    for path in sorted(EBEXTENSIONS.glob("*.config")):
        files.update(yaml.safe_load(path.read_text()).get("files", {}))
    return files


def _rotation() -> tuple[str, str]:
    """The logrotate configuration that names the metrics file, and the hourly job that runs it."""
    files = _files()
    (conf,) = [p for p, f in files.items() if p.startswith("/etc/logrotate") and METRICS_LOG in f["content"]]
    (job,) = [p for p, f in files.items() if p.startswith("/etc/cron.hourly/") and conf in f["content"]]
    return conf, job


# --- the metrics file is rotated ------------------------------------------------------


def test_the_metrics_file_is_rotated_hourly_the_way_eb_rotates_its_own_logs():
    # EB's Linux platforms keep hourly logrotate configurations in
    # /etc/logrotate.elasticbeanstalk.hourly/, each run by a job in /etc/cron.hourly/.
    conf, job = _rotation()
    files = _files()
    assert conf.startswith("/etc/logrotate.elasticbeanstalk.hourly/")
    assert files[job]["mode"] == "000755"
    assert files[job]["content"].startswith("#!/bin/sh")
    assert f"logrotate {conf}" in files[job]["content"]


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate is not installed")
def test_logrotate_rotates_a_full_metrics_file_and_the_app_writes_on_into_a_new_one(tmp_path):
    """The shipped configuration, run by logrotate itself: only the path and the app's user
    (webapp on the instances) are this machine's."""
    conf, _ = _rotation()
    user, group = getpass.getuser(), grp.getgrgid(os.getgid()).gr_name
    log = tmp_path / "metrics.log"
    text = _files()[conf]["content"].replace(METRICS_LOG, str(log)).replace("webapp", user)
    if group != user:
        text = text.replace(f"{user} {user}", f"{user} {group}")
    (tmp_path / "metrics.conf").write_text(text)
    handler = logging.handlers.WatchedFileHandler(log)  # as ze_tracking/metrics.py writes it
    record = logging.LogRecord("emf", logging.INFO, __file__, 0, "%s", ("line",), None)
    handler.emit(record)
    with log.open("r+b") as f:
        f.truncate(200 * 1024 * 1024)  # sparse: far past any size limit
    run = [shutil.which("logrotate"), "-s", str(tmp_path / "state"), str(tmp_path / "metrics.conf")]

    dry = subprocess.run([*run[:1], "-d", *run[1:]], capture_output=True, text=True)
    assert dry.returncode == 0 and "error" not in (dry.stdout + dry.stderr).lower(), dry.stdout + dry.stderr
    subprocess.run(run, check=True, capture_output=True, text=True)
    handler.emit(record)
    handler.close()

    assert (tmp_path / "metrics.log.1").stat().st_size >= 200 * 1024 * 1024
    assert log.read_text() == "line\n"  # a fresh file, which the app reopened
