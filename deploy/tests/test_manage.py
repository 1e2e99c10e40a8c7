"""The operators' way to run a management command in a stage: only allow-listed commands,
only from the bundle the release checked, as the app's login, started by one policy."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import resources
from ze_infra.release import bundle_commands

EB_DIR = Path(__file__).resolve().parents[1] / "eb"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"eb_{name}", EB_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


manage = _module("manage")


def _project(cfn: dict, suffix: str) -> dict:
    (project,) = [
        p["Properties"]
        for p in resources(cfn, "AWS::CodeBuild::Project").values()
        if p["Properties"]["Name"].endswith(suffix)
    ]
    return project


@pytest.mark.parametrize("args", [["shell"], ["dbshell"], ["migrate", "tracking", "zero"], ["flush", "--noinput"], []])
def test_a_command_outside_the_allow_list_is_refused(args):
    with pytest.raises(SystemExit, match="not an allowed command"):
        manage.command_argv(args)


def test_an_allowed_command_runs_with_its_arguments_unchanged():
    argv = manage.command_argv(["replay_dead_letters", "--id", "7; rm -rf /"])
    assert argv == ["manage.py", "replay_dead_letters", "--id", "7; rm -rf /"]


def test_export_pings_writes_where_the_job_uploads_from():
    argv = manage.command_argv(["export_pings", "--since", "2026-01-01", "--until", "2026-01-02", "--format", "csv"])
    assert argv[-2:] == ["--out", manage.EXPORT_DIR]
    with pytest.raises(SystemExit, match="--out"):
        manage.command_argv(["export_pings", "--out=/var/app/current", "--format", "csv"])


def test_createsuperuser_never_waits_for_a_terminal():
    assert manage.command_argv(["createsuperuser", "--username", "ana"])[-1] == "--noinput"
    assert manage.command_argv(["createsuperuser", "--noinput", "--username", "ana"]).count("--noinput") == 1


def test_the_job_refuses_a_command_outside_the_allow_list_before_running_anything(tmp_path):
    env = {**os.environ, "ZE_MANAGE_ARGS": json.dumps(["shell", "-c", "print(1)"])}
    done = subprocess.run(
        [sys.executable, str(EB_DIR / "manage.py"), "--in-job"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "not an allowed command" in done.stderr


def _bundle_check(cfn: dict, project_suffix: str, tmp_path: Path, *, sha256: str | None) -> subprocess.CompletedProcess:
    """The project's own commands after the download, on a bundle whose script leaves a mark."""
    script = {"-release": "deploy/eb/release-database.sh", "-manage": "deploy/eb/manage-job.sh"}[project_suffix]
    commands = bundle_commands(script)
    parts = _project(cfn, project_suffix)["Source"]["BuildSpec"]["Fn::Join"][1]
    buildspec = "".join(p for p in parts if isinstance(p, str))
    assert all(json.dumps(c)[1:-1] in buildspec for c in commands)
    assert commands[0].startswith("aws s3api get-object")
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w") as z:
        z.writestr(script, "touch ../ran\n")
    sha256 = sha256 or hashlib.sha256((tmp_path / "bundle.zip").read_bytes()).hexdigest()
    return subprocess.run(
        ["bash", "-euc", "\n".join(commands[1:])],
        cwd=tmp_path,
        env={**os.environ, "BUNDLE_SHA256": sha256},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("suffix", ["-release", "-manage"])
def test_a_bundle_that_does_not_match_its_sha256_never_runs(cfn, tmp_path, suffix):
    done = _bundle_check(cfn, suffix, tmp_path, sha256="0" * 64)
    assert done.returncode != 0
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("suffix", ["-release", "-manage"])
def test_the_bundle_that_matches_runs(cfn, tmp_path, suffix):
    done = _bundle_check(cfn, suffix, tmp_path, sha256=None)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ran").exists()


def test_manage_job_reads_the_app_login_never_the_admin_or_dms_one(cfn):
    role = _project(cfn, "-manage")["ServiceRole"]["Fn::GetAtt"][0]
    statements = [
        s
        for p in resources(cfn, "AWS::IAM::Policy").values()
        if any(r.get("Ref") == role for r in p["Properties"]["Roles"])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    text = json.dumps(statements)
    assert "ClusterSecret" not in text and "DmsLogin" not in text
    assert "secretsmanager:GetSecretValue" in text
    variables = {v["Name"] for v in _project(cfn, "-manage")["Environment"]["EnvironmentVariables"]}
    assert not {"DB_ADMIN_SECRET_ARN", "DB_DMS_SECRET_ARN"} & variables


def test_operators_may_start_only_the_manage_job_and_never_with_their_own_buildspec(cfn):
    (policy,) = [
        p["Properties"]
        for p in resources(cfn, "AWS::IAM::ManagedPolicy").values()
        if p["Properties"].get("ManagedPolicyName", "").endswith("-manage-operator")
    ]
    statements = [
        {**s, "Action": [s["Action"]] if isinstance(s["Action"], str) else s["Action"]}
        for s in policy["PolicyDocument"]["Statement"]
    ]
    manage_id = [
        k for k, v in resources(cfn, "AWS::CodeBuild::Project").items() if v["Properties"]["Name"].endswith("-manage")
    ]
    starts = [s for s in statements if "codebuild:StartBuild" in s["Action"]]
    assert all(json.dumps(s["Resource"]) == json.dumps({"Fn::GetAtt": [manage_id[0], "Arn"]}) for s in starts)
    (deny,) = [s for s in starts if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Null": {"codebuild:source.buildspec": "false"}}
    assert not any(a.startswith(("secretsmanager:", "iam:")) for s in statements for a in s["Action"])
    # Reading back an export, nothing else in S3.
    (s3,) = [s for s in statements if any(a.startswith("s3:") for a in s["Action"])]
    assert s3["Action"] == ["s3:GetObject"] and "ManageExports" in json.dumps(s3["Resource"])
