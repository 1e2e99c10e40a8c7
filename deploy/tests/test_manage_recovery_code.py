"""The first staff user's way into an admin that asks for a second factor: a recovery code
made by the manage job, kept out of its log and handed over through the exports bucket."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

EB_DIR = Path(__file__).resolve().parents[1] / "eb"
CODE = "k3y7ab9x"


def _manage():
    spec = importlib.util.spec_from_file_location("eb_manage_recovery", EB_DIR / "manage.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


manage = _manage()


def test_addstatictoken_is_allowed_and_the_job_chooses_the_code():
    assert manage.command_argv(["addstatictoken", "ana"]) == ["manage.py", "addstatictoken", "ana"]
    for args in (["addstatictoken", "-t", "123456", "ana"], ["addstatictoken", "--token=123456", "ana"]):
        with pytest.raises(SystemExit, match="the job chooses"):
            manage.command_argv(args)


@mock_aws
def test_the_recovery_code_lands_in_the_exports_bucket_never_in_the_log(tmp_path, monkeypatch, capfd):
    # django-otp's addstatictoken prints the code it made; this stand-in does the same.
    (tmp_path / "manage.py").write_text(f"print({CODE!r})\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(manage, "EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    monkeypatch.setenv("EXPORTS_BUCKET", "exports")
    monkeypatch.setenv("CODEBUILD_BUILD_ID", "ze-tracking-dev-manage:42")
    s3 = boto3.client("s3", region_name="sa-east-1")
    s3.create_bucket(Bucket="exports", CreateBucketConfiguration={"LocationConstraint": "sa-east-1"})

    assert manage.job_run(["addstatictoken", "ana"]) == 0

    body = s3.get_object(Bucket="exports", Key="ze-tracking-dev-manage/42/recovery-code.txt")["Body"].read()
    assert body.decode().strip() == CODE
    out, err = capfd.readouterr()
    assert CODE not in out + err
