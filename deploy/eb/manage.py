"""Run one allow-listed management command against a stage's database, as a logged job.

    python3 deploy/eb/manage.py prod replay_dead_letters --all
    python3 deploy/eb/manage.py prod createsuperuser --noinput --username ana --email ana@ze.delivery
    python3 deploy/eb/manage.py prod addstatictoken ana
    python3 deploy/eb/manage.py prod export_pings --since 2026-01-01 --until 2026-01-08 --format parquet

On an operator's machine (credentials allowed by the `<app>-manage-operator` policy): reads
the version the web environment runs, starts the CodeBuild project `<app>-manage` on that
bundle, pinned to the sha256 noted at release, with the command as JSON, and waits for it.
In the job (`--in-job`, from the checked bundle): checks the command against ALLOWED again
and runs `manage.py` with it, without a shell; export_pings' files go to the exports bucket.
Who started what is in CloudTrail (StartBuild, with the command) and the output in the
project's log group.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

# Management commands an operator may run in production, nothing else.
# addstatictoken (django-otp): a recovery code for a staff user without a usable device
# (the first one, or a lost phone), handed over through the exports bucket.
ALLOWED = frozenset(
    {"addstatictoken", "createsuperuser", "export_pings", "replay_dead_letters", "resend_failed_notifications"}
)
# export_pings writes here in the job; the job then uploads the folder to EXPORTS_BUCKET
# under the build's id, for the operator to fetch (the bucket keeps objects a week).
EXPORT_DIR = "/tmp/ze-exports"
DEADLINE_S = 30 * 60


def command_argv(args: list[str]) -> list[str]:
    """`args` as the argv of manage.py, or SystemExit when the command is not allowed."""
    if not isinstance(args, list) or not args or args[0] not in ALLOWED:
        raise SystemExit(f"not an allowed command: {args[:1]}; allowed: {sorted(ALLOWED)}")
    if not all(isinstance(a, str) for a in args):
        raise SystemExit("arguments must be strings")
    if args[0] == "createsuperuser" and "--noinput" not in args:
        args = [*args, "--noinput"]
    if args[0] == "addstatictoken" and any(a in ("-t", "--token") or a.startswith("--token=") for a in args):
        raise SystemExit("addstatictoken: the job chooses the code; it lands in the exports bucket")
    if args[0] == "export_pings":
        if any(a == "--out" or a.startswith("--out=") for a in args):
            raise SystemExit("export_pings: the job chooses --out; the files land in the exports bucket")
        args = [*args, "--out", EXPORT_DIR]
    return ["manage.py", *args]


def job_run(args: list[str]) -> int:
    """In the job: run the allowed command; then upload what it left in EXPORT_DIR (the
    export's files, a new superuser's first password, a recovery code) under the build's id."""
    import subprocess

    argv = command_argv(args)
    env = dict(os.environ)
    if args[0] == "createsuperuser":
        # A first password, never in the command, its log or CloudTrail: the operator
        # fetches it from the exports bucket, signs in and changes it.
        Path(EXPORT_DIR).mkdir(parents=True, exist_ok=True)
        env["DJANGO_SUPERUSER_PASSWORD"] = secrets.token_urlsafe(24)
        (Path(EXPORT_DIR) / "new-superuser-password.txt").write_text(env["DJANGO_SUPERUSER_PASSWORD"] + "\n")
    if args[0] == "addstatictoken":
        # The command prints the code it made: kept out of the job's log, handed over as a file.
        done = subprocess.run([sys.executable, *argv], env=env, stdout=subprocess.PIPE, text=True)
        code = done.returncode
        if code == 0:
            Path(EXPORT_DIR).mkdir(parents=True, exist_ok=True)
            (Path(EXPORT_DIR) / "recovery-code.txt").write_text(done.stdout.strip() + "\n")
    else:
        code = subprocess.run([sys.executable, *argv], env=env).returncode
    if code == 0 and Path(EXPORT_DIR).is_dir():
        import boto3

        s3, bucket = boto3.client("s3"), os.environ["EXPORTS_BUCKET"]
        prefix = os.environ.get("CODEBUILD_BUILD_ID", "local").replace(":", "/")
        for path in sorted(Path(EXPORT_DIR).iterdir()):
            s3.upload_file(str(path), bucket, f"{prefix}/{path.name}")
            print(f"s3://{bucket}/{prefix}/{path.name}")
    return code


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
    bucket, key, sha256 = release.version_bundle(eb, app=app, label=web["VersionLabel"])
    return release.build_run(
        session.client("codebuild"),
        project=f"{app}-manage",
        bucket=bucket,
        key=key,
        sha256=sha256,
        deadline=release.Deadline(DEADLINE_S),
        variables={"ZE_MANAGE_ARGS": json.dumps(args)},
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--in-job"]:
        sys.exit(job_run(json.loads(os.environ["ZE_MANAGE_ARGS"])))
    if len(sys.argv) < 3:
        raise SystemExit(f"usage: manage.py dev|prod COMMAND [ARGS...]; COMMAND one of {sorted(ALLOWED)}")
    print(f"done: {job_start(stage=sys.argv[1], args=sys.argv[2:])}")
