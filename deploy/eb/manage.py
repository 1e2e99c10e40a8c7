"""Run one allow-listed management command against a stage's database, as a logged job.

    python3 deploy/eb/manage.py prod replay_dead_letters --all
    python3 deploy/eb/manage.py prod createsuperuser --noinput --username ana --email ana@ze.delivery

On an operator's machine (credentials allowed by the `<app>-manage-operator` policy): reads
the version the web environment runs, starts the CodeBuild project `<app>-manage` on that
bundle, pinned to the sha256 noted at release, with the command as JSON, and waits for it.
In the job (`--in-job`, from the checked bundle): checks the command against ALLOWED again
and runs `manage.py` with it, without a shell. Who started what is in CloudTrail
(StartBuild, with the command) and the output in the project's log group.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# Management commands an operator may run in production, nothing else.
ALLOWED = frozenset({"createsuperuser", "replay_dead_letters", "resend_failed_notifications"})
DEADLINE_S = 30 * 60


def command_argv(args: list[str]) -> list[str]:
    """`args` as the argv of manage.py, or SystemExit when the command is not allowed."""
    if not isinstance(args, list) or not args or args[0] not in ALLOWED:
        raise SystemExit(f"not an allowed command: {args[:1]}; allowed: {sorted(ALLOWED)}")
    if not all(isinstance(a, str) for a in args):
        raise SystemExit("arguments must be strings")
    return ["manage.py", *args]


def job_start(*, stage: str, args: list[str], session=None) -> str:
    import boto3

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import release

    command_argv(args)
    session = session or boto3.Session()
    eb = session.client("elasticbeanstalk")
    app = f"ze-tracking-{stage}"
    (web,) = [
        e
        for e in eb.describe_environments(EnvironmentNames=[f"{app}-web"], IncludeDeleted=False)["Environments"]
        if e["EnvironmentName"] == f"{app}-web"
    ]
    (version,) = eb.describe_application_versions(ApplicationName=app, VersionLabels=[web["VersionLabel"]])[
        "ApplicationVersions"
    ]
    sha256 = (version.get("Description") or "").removeprefix("sha256:")
    return release.build_run(
        session.client("codebuild"),
        project=f"{app}-manage",
        bucket=version["SourceBundle"]["S3Bucket"],
        key=version["SourceBundle"]["S3Key"],
        sha256=sha256,
        deadline=release.Deadline(DEADLINE_S),
        variables={"ZE_MANAGE_ARGS": json.dumps(args)},
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--in-job"]:
        argv = command_argv(json.loads(os.environ["ZE_MANAGE_ARGS"]))
        os.execvp(sys.executable, [sys.executable, *argv])
    if len(sys.argv) < 3:
        raise SystemExit(f"usage: manage.py dev|prod COMMAND [ARGS...]; COMMAND one of {sorted(ALLOWED)}")
    print(f"done: {job_start(stage=sys.argv[1], args=sys.argv[2:])}")
