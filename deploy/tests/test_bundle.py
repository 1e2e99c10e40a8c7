"""The source bundle's own configuration (.ebextensions): what every instance installs, and
the resources EB adds to the web environment's stack."""

from __future__ import annotations

import getpass
import grp
import logging.handlers
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EBEXTENSIONS = ROOT / ".ebextensions"
WEB_ONLY = ".ebextensions/40_web_load_balancer.config"
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
    handler = logging.handlers.WatchedFileHandler(log)  # as infra/observability/metrics.py writes it
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


# --- web-only resources and the bundles -----------------------------------------------


def test_web_acl_is_associated_with_ebs_own_load_balancer_in_ebs_stack():
    resources = _config(Path(WEB_ONLY).name)["Resources"]
    (association,) = [r for r in resources.values() if r["Type"] == "AWS::WAFv2::WebACLAssociation"]
    assert association["Properties"]["ResourceArn"] == {"Ref": "AWSEBV2LoadBalancer"}
    acl = association["Properties"]["WebACLArn"]["Fn::GetOptionSetting"]
    assert acl["Namespace"] == "aws:elasticbeanstalk:customoption"
    assert acl["OptionName"] == "WebAclArn"


def test_web_instances_that_fail_the_load_balancers_health_check_are_replaced():
    group = _config(Path(WEB_ONLY).name)["Resources"]["AWSEBAutoScalingGroup"]
    assert group["Type"] == "AWS::AutoScaling::AutoScalingGroup"
    assert group["Properties"]["HealthCheckType"] == "ELB"
    # Time for a new instance to install and start the app before its checks count.
    assert group["Properties"]["HealthCheckGracePeriod"] >= 300


def test_only_the_web_configuration_names_the_load_balancer():
    """Worker-tier environments have no load balancer: a reference to it fails their deploys."""
    for path in EBEXTENSIONS.glob("*.config"):
        if f".ebextensions/{path.name}" != WEB_ONLY:
            assert "AWSEBV2LoadBalancer" not in path.read_text(), path.name


@pytest.mark.parametrize("role", ["web", "worker", "scheduler"])
def test_each_environment_gets_the_committed_tree_and_only_web_its_load_balancer_config(tmp_path, role):
    repo = tmp_path / "repo"
    shutil.copytree(EBEXTENSIONS, repo / ".ebextensions")
    (repo / "Procfile").write_text("web: true\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "bundle"], check=True)
    (repo / "untracked.txt").write_text("not in the bundle")

    out = tmp_path / f"{role}.zip"
    subprocess.run(["bash", str(ROOT / "deploy/eb/bundle.sh"), role, str(out)], cwd=repo, check=True)

    names = set(zipfile.ZipFile(out).namelist())
    assert "Procfile" in names and ".ebextensions/20_metrics.config" in names
    assert "untracked.txt" not in names
    assert (WEB_ONLY in names) == (role == "web")


def test_release_deploys_each_role_its_own_bundle():
    release = (ROOT / "deploy/eb/release.sh").read_text()
    assert "deploy/eb/bundle.sh" in release
    assert "git archive" not in release  # one way to build a bundle
