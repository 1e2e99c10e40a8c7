"""The release's decisions (deploy/eb/release.py) against moto's Elastic Beanstalk, S3 and
CodeBuild: a stage is reported released only when every environment runs the new version
healthily; anything else stops the release, loudly and within its deadline."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.elasticbeanstalk.models import eb_backends

REGION = "sa-east-1"
APP = "ze-tracking-prod"
EB_DIR = Path(__file__).resolve().parents[1] / "eb"


def _module():
    spec = importlib.util.spec_from_file_location("eb_release", EB_DIR / "release.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


release = _module()
FAST = release.Deadline(seconds=0.5, poll=0.05)


@pytest.fixture
def session(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def eb(session):
    client = session.client("elasticbeanstalk")
    client.create_application(ApplicationName=APP)
    for role in release.ROLES:
        client.create_environment(ApplicationName=APP, EnvironmentName=f"{APP}-{role}", SolutionStackName="python")
    return client


def _environment_becomes(name: str, **state) -> None:
    """What EB reports once an update has ended (moto does not run deployments)."""
    environment = eb_backends[DEFAULT_ACCOUNT_ID][REGION].applications[APP].environments[name]
    for attribute, value in state.items():
        setattr(environment, attribute, value)


def _wait(eb, label: str = "v2") -> None:
    release.environment_wait(eb, name=f"{APP}-web", label=label, since=datetime.now(UTC), deadline=FAST)


def test_environment_running_the_new_version_healthily_is_released(eb):
    _environment_becomes(f"{APP}-web", status="Ready", version_label="v2", health="Green", health_status="Ok")
    _wait(eb)


def test_rolling_deploy_that_ended_with_mixed_versions_fails_the_release(eb):
    # A failed rolling deploy ends Ready: the environment keeps the old label and enhanced
    # health turns it Degraded ("Incorrect application version found on 1 out of 2 instances").
    _environment_becomes(f"{APP}-web", status="Ready", version_label="v1", health="Red", health_status="Degraded")
    with pytest.raises(release.ReleaseFailed, match=r"did not release v2: .*version 'v1'.*health Red"):
        _wait(eb)


def test_new_version_label_with_unhealthy_environment_fails_the_release(eb):
    _environment_becomes(f"{APP}-web", status="Ready", version_label="v2", health="Yellow", health_status="Warning")
    with pytest.raises(release.ReleaseFailed, match="health Yellow; health status Warning"):
        _wait(eb)


def test_deploy_still_running_at_the_deadline_fails_the_release(eb):
    _environment_becomes(f"{APP}-web", status="Updating", version_label="v1", health="Grey", health_status="Info")
    started = release.time.monotonic()
    with pytest.raises(release.ReleaseFailed, match="status Updating"):
        _wait(eb)
    assert release.time.monotonic() - started < 5


def test_an_instance_left_on_the_old_version_fails_even_when_the_environment_looks_right():
    environment = {"Status": "Ready", "VersionLabel": "v2", "Health": "Green", "HealthStatus": "Ok"}
    instances = [
        {"InstanceId": "i-new", "HealthStatus": "Ok", "Deployment": {"VersionLabel": "v2"}},
        {
            "InstanceId": "i-old",
            "HealthStatus": "Warning",
            "Causes": ["Incorrect application version"],
            "Deployment": {"VersionLabel": "v1"},
        },
    ]
    problems = release.environment_problems(environment=environment, instances=instances, label="v2")
    assert problems == ["instance i-old runs 'v1'", "instance i-old Warning: Incorrect application version"]
    assert release.environment_problems(environment=environment, instances=instances[:1], label="v2") == []


def test_bundle_upload_returns_the_sha256_of_the_stored_object(session, tmp_path):
    s3 = session.client("s3")
    s3.create_bucket(Bucket="eb-storage", CreateBucketConfiguration={"LocationConstraint": REGION})
    bundle = tmp_path / "v2.zip"
    bundle.write_bytes(b"PK bundle bytes")
    sha256 = release.bundle_upload(s3, path=bundle, bucket="eb-storage", key=f"{APP}/v2.zip")
    stored = s3.get_object(Bucket="eb-storage", Key=f"{APP}/v2.zip")["Body"].read()
    assert sha256 == hashlib.sha256(stored).hexdigest() == hashlib.sha256(b"PK bundle bytes").hexdigest()


def test_release_task_is_waited_for_until_it_succeeds(session):
    cb = session.client("codebuild")
    cb.create_project(
        name=f"{APP}-release",
        source={"type": "S3", "location": "eb-storage/placeholder.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/amazonlinux2-x86_64-standard:5.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/release",
    )
    build_id = release.build_run(
        cb, project=f"{APP}-release", bucket="eb-storage", key=f"{APP}/v2.zip", sha256="ab" * 32, deadline=FAST
    )
    assert build_id.startswith(f"{APP}-release:")
    (build,) = cb.batch_get_builds(ids=[build_id])["builds"]
    assert build["buildStatus"] == "SUCCEEDED"


def test_release_script_waits_with_a_deadline_not_the_cli_waiter():
    script = (EB_DIR / "release.sh").read_text()
    assert "wait environment-updated" not in script
    # The version's processing is polled for (release.py versions), not slept on.
    assert "sleep 15" not in script
    assert "create-application-version" not in script
    assert "deploy/eb/release.py" in script


def test_the_warehouse_is_built_from_the_released_web_bundle_and_waited_for(session, monkeypatch):
    monkeypatch.setattr(release, "WAREHOUSE_BUILD_DEADLINE_S", 0.5)
    bucket = f"elasticbeanstalk-{REGION}-{DEFAULT_ACCOUNT_ID}"
    s3 = session.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=bucket, Key=f"{APP}/v2-web.zip", Body=b"the web bundle")
    cb = session.client("codebuild")
    cb.create_project(
        name=f"{APP}-warehouse-build",
        source={"type": "S3", "location": f"{bucket}/{APP}/warehouse/current.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/amazonlinux2-x86_64-standard:5.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/warehouse",
    )
    build_id = release.warehouse_build(stage="prod", label="v2", session=session)
    # Where the nightly build reads it, and built once now.
    assert s3.get_object(Bucket=bucket, Key=f"{APP}/warehouse/current.zip")["Body"].read() == b"the web bundle"
    (build,) = cb.batch_get_builds(ids=[build_id])["builds"]
    assert build["projectName"] == f"{APP}-warehouse-build" and build["buildStatus"] == "SUCCEEDED"
