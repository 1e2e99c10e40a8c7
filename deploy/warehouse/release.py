"""The warehouse's release step: run after the application's migrations and grants.

    python deploy/warehouse/release.py dev

deploy/eb/release.sh calls it last, once the web environment's leader has run `migrate`
and `db_bootstrap.py grants` (deploy/eb/leader-database.sh). Needs boto3 and the same
AWS credentials as the rest of the release.

Steps:
  1. read the stage stack's outputs: the Redshift workgroup, database and admin secret,
     and the DMS task;
  2. apply redshift_tables.sql, then redshift_views.sql, through the Redshift Data API
     (every statement is idempotent) and wait for them: the task loads with
     TargetTablePrepMode DO_NOTHING, so the tables must exist, with their keys, first;
  3. start the DMS task if it never ran (full load, then CDC), resume it if it was
     stopped, leave it alone while it runs. A failed task is left for an operator: a
     restarted full load appends rows again (DO_NOTHING never empties a table), so the
     tables it was loading must be emptied by hand first, and only while Aurora still
     holds everything they had (never `tracking_ping` once a partition has expired).

Why not a CloudFormation custom resource: the task must start after the migrations, and
the stack is deployed before the code that migrates (release.sh ships code to the
environments the stack made).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ze_infra.analytics_tables import WAREHOUSE_SQL, sql_statements  # noqa: E402  (no CDK import)

# DMS task status -> how to start it (None: nothing to do). DescribeReplicationTasks
# documents the statuses; any other one (failed, deleting, ...) needs a person.
START_TYPES: dict[str, str | None] = {
    "ready": "start-replication",
    "stopped": "resume-processing",
    "running": None,
    "starting": None,
    "modifying": None,
    "stopping": None,
}

DONE = {"FINISHED", "FAILED", "ABORTED"}


def replication_task_start_type(*, status: str) -> str | None:
    """How to start a task in `status`, or None when it runs (or is about to) already."""
    if status not in START_TYPES:
        raise SystemExit(f"DMS task is {status!r}: look at it before starting it again (see this file's docstring)")
    return START_TYPES[status]


def warehouse_release(*, stage: str) -> None:
    import boto3  # the release machine has it; the CDK tests import this module without it

    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in boto3.client("cloudformation").describe_stacks(StackName=f"ZeTracking-{stage}")["Stacks"][0]["Outputs"]
    }
    data = boto3.client("redshift-data")
    for name in ("redshift_tables.sql", "redshift_views.sql"):
        statement_id = data.batch_execute_statement(
            WorkgroupName=outputs["RedshiftWorkgroupName"],
            Database=outputs["RedshiftDatabase"],
            SecretArn=outputs["RedshiftAdminSecretArn"],
            Sqls=sql_statements(path=WAREHOUSE_SQL / name),
            StatementName=f"ze-tracking-{stage}-{name}",
        )["Id"]
        deadline = time.monotonic() + 600
        while (described := data.describe_statement(Id=statement_id))["Status"] not in DONE:
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: still {described['Status']} after 600 s")
            time.sleep(2)
        if described["Status"] != "FINISHED":
            raise SystemExit(f"{name}: {described['Status']}: {described.get('Error')}")
        print(f"warehouse: {name} applied")

    dms = boto3.client("dms")
    task_arn = outputs["AnalyticsTaskArn"]
    (task,) = dms.describe_replication_tasks(Filters=[{"Name": "replication-task-arn", "Values": [task_arn]}])[
        "ReplicationTasks"
    ]
    start_type = replication_task_start_type(status=task["Status"])
    if start_type:
        dms.start_replication_task(ReplicationTaskArn=task_arn, StartReplicationTaskType=start_type)
    print(f"warehouse: DMS task was {task['Status']}: {start_type or 'left running'}")


if __name__ == "__main__":
    warehouse_release(stage=sys.argv[1])
