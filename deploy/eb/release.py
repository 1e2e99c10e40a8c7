"""Ship a release's bundles to one stage: the decisions of deploy/eb/release.sh, in boto3.

    python3 deploy/eb/release.py versions STAGE LABEL FOLDER   (FOLDER/LABEL-web.zip, -worker.zip)
    python3 deploy/eb/release.py deploy STAGE LABEL
    python3 deploy/eb/release.py task STAGE VERSION_LABEL   (the release task alone, e.g. after a rotation)

Steps, each with a deadline; any failure prints what Elastic Beanstalk or CodeBuild said
and exits non-zero, so a release never reports "released" for a stage that is not:
  versions:
  1. upload each bundle to EB's storage bucket and note its sha256;
  2. create its application version (EB validates the bundle), the sha256 in its
     description, and wait until it is PROCESSED;
  deploy (release.sh runs the warehouse's `before` step in between):
  3. run the release task (CodeBuild `<app>-release`) on the web bundle, pinned to its
     sha256: the task checks the bundle against it before running anything from it, so a
     bundle rewritten after the upload is refused (deploy/ze_infra/release.py);
  4. deploy the versions to web, worker and scheduler, one after the other, and wait for
     each until it runs the version everywhere and is healthy: environment Ready, its
     VersionLabel the new one, health Green/Ok, and every instance (enhanced health) on
     the new version and Ok. A rolling deploy that failed half-way ends Ready with mixed
     versions: that is a failure, reported with the environment's events.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# A rolling deploy with an additional batch replaces one instance at a time and waits for
# its health checks: minutes per instance. The deadline covers the largest environment.
ENVIRONMENT_DEADLINE_S = 45 * 60
VERSION_DEADLINE_S = 5 * 60
# release.py's CodeBuild project times out after 30 minutes; a little more to see it end.
RELEASE_TASK_DEADLINE_S = 35 * 60
# The warehouse build: dbt source freshness and build, under its project's 60-minute timeout.
WAREHOUSE_BUILD_DEADLINE_S = 65 * 60
POLL_S = 15.0

ROLES = ("web", "worker", "scheduler")
# deploy/eb/bundle.sh: web's bundle, and the worker tiers' (worker and scheduler).
KINDS = ("web", "worker")
BUILD_RUNNING = {"IN_PROGRESS"}


class ReleaseFailed(SystemExit):
    """The release stops here; the message says why."""


@dataclass(frozen=True)
class Deadline:
    seconds: float
    poll: float = POLL_S
    clock: Callable[[], float] = time.monotonic

    def until(self, done: Callable[[], bool]) -> bool:
        """Call `done` every `poll` seconds until it is true (True) or the deadline passes
        (False)."""
        end = self.clock() + self.seconds
        while True:
            if done():
                return True
            if self.clock() >= end:
                return False
            time.sleep(min(self.poll, max(0.0, end - self.clock())))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_upload(s3, *, path: Path, bucket: str, key: str) -> str:
    """Upload the bundle; its sha256 (hex), which pins every later use of it."""
    sha256 = sha256_of(path)
    s3.upload_file(str(path), bucket, key)
    return sha256


def application_version_create(eb, *, app: str, label: str, bucket: str, key: str, sha256: str, deadline: Deadline):
    eb.create_application_version(
        ApplicationName=app,
        VersionLabel=label,
        # Read back by deploy/eb/manage.py to pin an operator job to the same bytes.
        Description=f"sha256:{sha256}",
        SourceBundle={"S3Bucket": bucket, "S3Key": key},
        Process=True,
    )
    status = {}

    def processed() -> bool:
        (version,) = eb.describe_application_versions(ApplicationName=app, VersionLabels=[label])["ApplicationVersions"]
        status["value"] = version["Status"]
        return version["Status"] in {"PROCESSED", "FAILED"}

    if not deadline.until(processed) or status["value"] != "PROCESSED":
        raise ReleaseFailed(f"application version {label}: {status.get('value')} (EB could not process the bundle)")


def build_run(
    cb, *, project: str, bucket: str, key: str, sha256: str, deadline: Deadline, variables: dict[str, str] | None = None
) -> str:
    """Start the CodeBuild `project` on the bundle at s3://bucket/key, pinned to `sha256`
    (and given `variables`), and wait for it; its id. Raises ReleaseFailed unless it
    SUCCEEDED."""
    values = {"BUNDLE_BUCKET": bucket, "BUNDLE_KEY": key, "BUNDLE_SHA256": sha256, **(variables or {})}
    build_id = cb.start_build(
        projectName=project,
        environmentVariablesOverride=[{"name": k, "value": v, "type": "PLAINTEXT"} for k, v in values.items()],
    )["build"]["id"]
    return build_wait(cb, project=project, build_id=build_id, deadline=deadline)


def build_wait(cb, *, project: str, build_id: str, deadline: Deadline) -> str:
    """Wait for CodeBuild build `build_id` of `project`; its id. Raises ReleaseFailed unless
    it SUCCEEDED."""
    status = {}

    def finished() -> bool:
        (build,) = cb.batch_get_builds(ids=[build_id])["builds"]
        status["value"] = build["buildStatus"]
        return build["buildStatus"] not in BUILD_RUNNING

    if not deadline.until(finished):
        raise ReleaseFailed(f"{project} build {build_id} still running after {deadline.seconds:.0f} s")
    if status["value"] != "SUCCEEDED":
        raise ReleaseFailed(f"{project} build {build_id}: {status['value']} (see its CloudWatch log)")
    return build_id


def environment_problems(*, environment: dict, instances: list[dict] | None, label: str) -> list[str]:
    """What keeps `environment` (a DescribeEnvironments entry) from running `label`
    healthily; `instances` are its DescribeInstancesHealth entries, None where that is not
    available (basic health). Empty when released."""
    problems = []
    if environment["Status"] != "Ready":
        problems.append(f"status {environment['Status']}")
    if environment.get("VersionLabel") != label:
        problems.append(f"version {environment.get('VersionLabel')!r}, not {label!r}")
    if environment.get("Health") != "Green":
        problems.append(f"health {environment.get('Health')}")
    if environment.get("HealthStatus") not in (None, "Ok"):
        problems.append(f"health status {environment.get('HealthStatus')}")
    for instance in instances or ():
        running = (instance.get("Deployment") or {}).get("VersionLabel")
        if running != label:
            problems.append(f"instance {instance['InstanceId']} runs {running!r}")
        if instance.get("HealthStatus") not in (None, "Ok"):
            causes = "; ".join(instance.get("Causes") or [])
            problems.append(f"instance {instance['InstanceId']} {instance.get('HealthStatus')}: {causes}".rstrip(": "))
    return problems


def _instances_health(eb, name: str) -> list[dict] | None:
    """Per-instance deployment and health; None where the environment does not report it
    (basic health) or the endpoint does not offer the call."""
    from botocore.exceptions import ClientError

    try:
        out: list[dict] = []
        kwargs = {"EnvironmentName": name, "AttributeNames": ["HealthStatus", "Causes", "Deployment"]}
        while True:
            page = eb.describe_instances_health(**kwargs)
            out.extend(page.get("InstanceHealthList", []))
            if not page.get("NextToken"):
                return out
            kwargs["NextToken"] = page["NextToken"]
    except (ClientError, NotImplementedError):
        return None


def _events(eb, *, name: str, since: datetime) -> list[dict]:
    from botocore.exceptions import ClientError

    try:
        return eb.describe_events(EnvironmentName=name, StartTime=since)["Events"]
    except (ClientError, NotImplementedError):
        return []


def environment_wait(eb, *, name: str, label: str, since: datetime, deadline: Deadline) -> None:
    """Wait until environment `name` runs `label` everywhere and is healthy. Stops early on
    an ERROR event since `since` (the update); raises ReleaseFailed, printing the
    environment's events, on failure or at the deadline."""
    state: dict = {"problems": ["not read yet"]}

    def settled() -> bool:
        (environment,) = [
            e
            for e in eb.describe_environments(EnvironmentNames=[name], IncludeDeleted=False)["Environments"]
            if e["EnvironmentName"] == name
        ]
        instances = _instances_health(eb, name) if environment["Status"] == "Ready" else None
        state["problems"] = environment_problems(environment=environment, instances=instances, label=label)
        if not state["problems"]:
            return True
        state["errors"] = [e for e in _events(eb, name=name, since=since) if e.get("Severity") in {"ERROR", "FATAL"}]
        return environment["Status"] == "Ready" and bool(state["errors"])

    if deadline.until(settled) and not state["problems"]:
        return
    for event in reversed(_events(eb, name=name, since=since)):
        print(f"  {event.get('EventDate')} {event.get('Severity')} {event.get('Message')}", file=sys.stderr)
    raise ReleaseFailed(f"{name} did not release {label}: {'; '.join(state['problems'])}")


def version_bundle(eb, *, app: str, label: str) -> tuple[str, str, str]:
    """The bucket, key and sha256 (noted at upload) of application version `label`."""
    (version,) = eb.describe_application_versions(ApplicationName=app, VersionLabels=[label])["ApplicationVersions"]
    bundle = version["SourceBundle"]
    return bundle["S3Bucket"], bundle["S3Key"], (version.get("Description") or "").removeprefix("sha256:")


def versions(*, stage: str, label: str, folder: Path, session=None) -> None:
    """Upload `folder`/<label>-<kind>.zip for each bundle kind and register each as the
    application version <label>-<kind>, its sha256 in the description."""
    import boto3  # the release machine has it; tests pass their own session

    session = session or boto3.Session()
    eb, s3 = session.client("elasticbeanstalk"), session.client("s3")
    app = f"ze-tracking-{stage}"
    bucket = eb.create_storage_location()["S3Bucket"]
    for kind in KINDS:
        key = f"{app}/{label}-{kind}.zip"
        sha256 = bundle_upload(s3, path=folder / f"{label}-{kind}.zip", bucket=bucket, key=key)
        print(f"uploaded s3://{bucket}/{key} sha256 {sha256}")
        application_version_create(
            eb,
            app=app,
            label=f"{label}-{kind}",
            bucket=bucket,
            key=key,
            sha256=sha256,
            deadline=Deadline(VERSION_DEADLINE_S),
        )


def release_task(*, stage: str, version: str, session=None) -> str:
    """Run the release task on application version `version`, pinned to its sha256."""
    import boto3

    session = session or boto3.Session()
    app = f"ze-tracking-{stage}"
    bucket, key, sha256 = version_bundle(session.client("elasticbeanstalk"), app=app, label=version)
    return build_run(
        session.client("codebuild"),
        project=f"{app}-release",
        bucket=bucket,
        key=key,
        sha256=sha256,
        deadline=Deadline(RELEASE_TASK_DEADLINE_S),
    )


def warehouse_build(*, stage: str, label: str, session=None) -> str:
    """The warehouse's models and tests (dbt, warehouse/) built from this release's web
    bundle: copied to where the nightly build reads it (deploy/ze_infra/warehouse_build.py),
    then built once now and waited for."""
    import boto3

    session = session or boto3.Session()
    app = f"ze-tracking-{stage}"
    # Elastic Beanstalk's storage bucket (create_storage_location's), where `versions` put it.
    account = session.client("sts").get_caller_identity()["Account"]
    bucket, key = f"elasticbeanstalk-{session.region_name}-{account}", f"{app}/{label}-web.zip"
    session.client("s3").copy_object(
        Bucket=bucket, Key=f"{app}/warehouse/current.zip", CopySource={"Bucket": bucket, "Key": key}
    )
    cb = session.client("codebuild")
    project = f"{app}-warehouse-build"
    build_id = cb.start_build(projectName=project)["build"]["id"]
    return build_wait(cb, project=project, build_id=build_id, deadline=Deadline(WAREHOUSE_BUILD_DEADLINE_S))


def deploy(*, stage: str, label: str, session=None) -> None:
    """The release task on the web bundle, then web, worker and scheduler, one at a time."""
    import boto3

    session = session or boto3.Session()
    eb = session.client("elasticbeanstalk")
    app = f"ze-tracking-{stage}"
    # The database first, from the new bundle, by the only holder of the admin login.
    release_task(stage=stage, version=f"{label}-web", session=session)
    # Then the code: web, workers and beat, against the migrated schema.
    for role in ROLES:
        name, version = f"{app}-{role}", f"{label}-{'web' if role == 'web' else 'worker'}"
        since = datetime.now(UTC)
        eb.update_environment(EnvironmentName=name, VersionLabel=version)
        environment_wait(eb, name=name, label=version, since=since, deadline=Deadline(ENVIRONMENT_DEADLINE_S))
        print(f"{name} runs {version}")


USAGE = (
    "usage: release.py versions dev|prod LABEL FOLDER | release.py deploy dev|prod LABEL"
    " | release.py task dev|prod VERSION_LABEL | release.py warehouse dev|prod LABEL"
)

if __name__ == "__main__":
    match sys.argv[1:]:
        case ["versions", stage, label, folder]:
            versions(stage=stage, label=label, folder=Path(folder))
        case ["deploy", stage, label]:
            deploy(stage=stage, label=label)
        case ["warehouse", stage, label]:
            print(f"warehouse built: {warehouse_build(stage=stage, label=label)}")
        case ["task", stage, version]:
            print(f"done: {release_task(stage=stage, version=version)}")
        case _:
            raise SystemExit(USAGE)
