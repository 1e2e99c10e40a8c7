"""The warehouse's side of a release; deploy/eb/release.sh runs it around the database
migrations:

    python deploy/warehouse/release.py dev before   # before the release task migrates Aurora
    python deploy/warehouse/release.py dev after    # once web, workers and beat run the new code
    python deploy/warehouse/release.py dev dedupe   # after a first full load or a table reload

Needs boto3 and the release's AWS credentials (CloudFormation read, Redshift Data API,
Secrets Manager read of the warehouse's four logins, DMS describe, start and stop). Every
wait has a deadline; every failure exits non-zero with what DMS or Redshift said.

`before`:
  1. read the stage stack's outputs: the Redshift workgroup, database and admin secret,
     the secrets of the DMS, privacy and warehouse build users, and the DMS task;
  2. create those users if missing, else set their passwords again, from their secrets,
     none able to create users or databases (see `warehouse_users_sync`); the migrations
     grant them their rights;
  3. apply the warehouse migrations (migrations/NNNN_name.sql) not applied yet, in name
     order, each once (see `migration_apply`). The tables exist, with their keys, before
     DMS loads them (TargetTablePrepMode DO_NOTHING) and before Aurora gains a replicated
     column. The metrics are not here: the warehouse build (dbt, warehouse/) makes them,
     after this release and daily (deploy/ze_infra/warehouse_build.py);
  4. stop the DMS task if it runs, and wait until it is stopped, so that the migrations
     are not replicated half-way. A task still in its first full load is not stopped: a
     resumed task loads again the tables it had not finished, appending their rows.
`after`:
  5. start the task if it never ran (full load, then CDC), resume it if it was stopped,
     and wait until it runs (with its full load under way after a first start). A failed
     task is left for an operator (deploy/README.md, "DMS task failed").
`dedupe`:
  stop the task, keep one row per primary key in every replicated table (dedupe.sql:
  Redshift does not enforce keys, and a full load appends to DO_NOTHING tables), resume.

Why not a CloudFormation custom resource: the task must start after the migrations, and
the stack is deployed before the code that migrates (release.sh ships code to the
environments the stack made).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ze_infra.analytics_tables import (  # noqa: E402  (no CDK import)
    REDSHIFT_DBT_USER,
    REDSHIFT_DMS_USER,
    REDSHIFT_PRIVACY_USER,
    WAREHOUSE_SQL,
    sql_statements,
)

MIGRATIONS = WAREHOUSE_SQL / "migrations"
MIGRATION_NAME = re.compile(r"^[0-9]{4}_[a-z0-9_]+\.sql$")
LEDGER = "public.warehouse_migrations"
# One row per migration: started_at is written before its batch runs, applied_at by the
# batch itself, in the batch's transaction.
LEDGER_DDL = (
    f"CREATE TABLE IF NOT EXISTS {LEDGER} ("
    "name VARCHAR(128) NOT NULL, started_at TIMESTAMP NOT NULL, applied_at TIMESTAMP, PRIMARY KEY (name))"
)

STATEMENT_DONE = {"FINISHED", "FAILED", "ABORTED"}
STATEMENT_DEADLINE_S = 1800
TASK_DEADLINE_S = 1800
POLL_S = 10.0

# DMS task status -> how to start it (None: it runs already). DescribeReplicationTasks
# documents the statuses; any other one (failed, deleting, ...) needs a person.
START_TYPES: dict[str, str | None] = {
    "ready": "start-replication",
    "stopped": "resume-processing",
    "running": None,
}
# Statuses that end by themselves: wait them out before deciding.
TRANSITIONAL = {"creating", "starting", "stopping", "modifying", "moving", "testing"}


class StatementFailed(Exception):
    """A Data API statement ended FAILED or ABORTED: its batch was rolled back whole."""


@dataclass
class Warehouse:
    """Redshift through the Data API: a batch of statements runs as one transaction."""

    data: Any  # boto3 redshift-data client
    workgroup: str
    database: str
    secret_arn: str
    deadline_s: float = STATEMENT_DEADLINE_S
    poll_s: float = POLL_S

    def _target(self) -> dict[str, str]:
        return {"WorkgroupName": self.workgroup, "Database": self.database, "SecretArn": self.secret_arn}

    def _wait(self, *, statement_id: str, label: str) -> dict:
        deadline = time.monotonic() + self.deadline_s
        while (described := self.data.describe_statement(Id=statement_id))["Status"] not in STATEMENT_DONE:
            if time.monotonic() > deadline:
                raise SystemExit(f"warehouse: {label}: still {described['Status']} after {self.deadline_s:.0f} s")
            time.sleep(self.poll_s)
        if described["Status"] != "FINISHED":
            raise StatementFailed(f"{label}: {described['Status']}: {described.get('Error')}")
        return described

    def run(self, *, sqls: list[str], label: str) -> None:
        statement_id = self.data.batch_execute_statement(Sqls=sqls, StatementName=label[:500], **self._target())["Id"]
        self._wait(statement_id=statement_id, label=label)

    def query(self, *, sql: str, label: str) -> list[list[Any]]:
        statement_id = self.data.execute_statement(Sql=sql, StatementName=label[:500], **self._target())["Id"]
        self._wait(statement_id=statement_id, label=label)
        rows, token = [], None
        while True:
            page = self.data.get_statement_result(Id=statement_id, **({"NextToken": token} if token else {}))
            # A Field holds one typed value, or isNull.
            rows += [
                [None if field.get("isNull") else next(iter(field.values())) for field in record]
                for record in page["Records"]
            ]
            if not (token := page.get("NextToken")):
                return rows


# --- Warehouse users -----------------------------------------------------------------------

# The only users this step creates or changes: a secret naming any other (the admin) is refused.
WAREHOUSE_USERS = (REDSHIFT_DMS_USER, REDSHIFT_PRIVACY_USER, REDSHIFT_DBT_USER)
# The stack outputs naming their secrets (deploy/ze_infra/stack.py).
WAREHOUSE_USER_OUTPUTS = ("RedshiftDmsSecretArn", "RedshiftPrivacySecretArn", "RedshiftDbtSecretArn")


def warehouse_user_check(*, username: str) -> None:
    if username not in WAREHOUSE_USERS:
        raise SystemExit(f"warehouse: {username!r} is not a warehouse user ({', '.join(WAREHOUSE_USERS)})")


def warehouse_user_statement(*, username: str, password: str, exists: bool) -> str:
    """CREATE or ALTER one user with its secret's password and no right to create users
    (a superuser, in Redshift) or databases. The statement is kept in the Data API's
    history and Redshift's logs, so the password travels in Redshift's MD5 form
    ('md5' + md5(password + user name)), never as it is."""
    warehouse_user_check(username=username)
    hashed = "md5" + hashlib.md5((password + username).encode()).hexdigest()
    return f"{'ALTER' if exists else 'CREATE'} USER {username} PASSWORD '{hashed}' NOCREATEDB NOCREATEUSER"


def warehouse_users_sync(*, warehouse: Warehouse, secrets: Any, secret_arns: list[str]) -> None:
    """Steps: read each user's secret; ask Redshift which of them exist; create the missing
    ones and set the others' passwords again, in one transaction. Run every release, so a
    password changed in Secrets Manager reaches Redshift at the next one."""
    logins = {}
    for arn in secret_arns:
        value = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
        warehouse_user_check(username=value["username"])  # before its name reaches any SQL
        logins[value["username"]] = value["password"]
    names = ", ".join(f"'{username}'" for username in sorted(logins))
    existing = {
        row[0]
        for row in warehouse.query(
            sql=f"SELECT usename FROM pg_user WHERE usename IN ({names})", label="warehouse users"
        )
    }
    statements = [
        warehouse_user_statement(username=username, password=password, exists=username in existing)
        for username, password in sorted(logins.items())
    ]
    try:
        warehouse.run(sqls=statements, label="warehouse users")
    except StatementFailed as failure:
        raise SystemExit(f"warehouse: users: {failure}") from None
    print(f"warehouse: users {', '.join(sorted(logins))} ready")


# --- Warehouse migrations -----------------------------------------------------------------


def migration_files(*, folder: Path = MIGRATIONS) -> list[str]:
    names = sorted(path.name for path in folder.glob("*.sql"))
    for name in names:
        if not MIGRATION_NAME.match(name):
            raise SystemExit(f"warehouse: {name}: a migration is named NNNN_lower_case.sql")
    return names


def migrations_pending(*, files: list[str], ledger: dict[str, bool]) -> list[str]:
    """The migrations to apply, in order, given the ledger (name -> applied). Refuses when a
    migration was started and never recorded as applied: its batch outlived a release that
    gave up waiting, and whether it committed is for a person to find out."""
    unfinished = sorted(name for name, applied in ledger.items() if not applied)
    if unfinished:
        raise SystemExit(
            f"warehouse: migration {unfinished[0]} was started and never recorded as applied. Look in "
            f"sys_query_history whether its statements committed, then either set applied_at in {LEDGER} "
            "(it did) or delete its row (it did not) and release again."
        )
    unknown = sorted(set(ledger) - set(files))
    if unknown:
        raise SystemExit(f"warehouse: applied migrations missing from this checkout: {', '.join(unknown)}")
    return [name for name in files if name not in ledger]


def migration_apply(*, warehouse: Warehouse, name: str, folder: Path = MIGRATIONS) -> None:
    """Steps: record the start (its own transaction); run the file's statements and record
    the end in one batch (one transaction). A batch that fails is rolled back whole, so its
    start is deleted and the release stops; a batch still running at the deadline keeps its
    start, which the next release reports instead of running the file a second time."""
    statements = sql_statements(path=folder / name)
    warehouse.run(sqls=[f"INSERT INTO {LEDGER} (name, started_at) VALUES ('{name}', GETDATE())"], label=f"{name} start")
    try:
        warehouse.run(
            sqls=[*statements, f"UPDATE {LEDGER} SET applied_at = GETDATE() WHERE name = '{name}'"], label=name
        )
    except StatementFailed as failure:
        warehouse.run(sqls=[f"DELETE FROM {LEDGER} WHERE name = '{name}' AND applied_at IS NULL"], label=f"{name} undo")
        raise SystemExit(f"warehouse: migration {failure} (rolled back; nothing applied)") from None
    print(f"warehouse: {name} applied")


def warehouse_migrate(*, warehouse: Warehouse, folder: Path = MIGRATIONS) -> list[str]:
    """Apply the pending migrations; return the ones applied."""
    warehouse.run(sqls=[LEDGER_DDL], label="migrations ledger")
    ledger = {
        name: bool(applied)
        for name, applied in warehouse.query(
            sql=f"SELECT name, applied_at IS NOT NULL FROM {LEDGER}", label="migrations applied"
        )
    }
    pending = migrations_pending(files=migration_files(folder=folder), ledger=ledger)
    for name in pending:
        migration_apply(warehouse=warehouse, name=name, folder=folder)
    print(f"warehouse: {len(pending)} migration(s) applied")
    return pending


def warehouse_dedupe(*, warehouse: Warehouse) -> None:
    try:
        warehouse.run(sqls=sql_statements(path=WAREHOUSE_SQL / "dedupe.sql"), label="dedupe.sql")
    except StatementFailed as failure:
        raise SystemExit(f"warehouse: {failure}") from None
    print("warehouse: one row per key in every replicated table")


# --- The DMS task ---------------------------------------------------------------------------


def replication_task_start_type(*, status: str) -> str | None:
    """How to start a task in `status`, or None when it runs already."""
    if status not in START_TYPES:
        raise SystemExit(f"DMS task is {status!r}: look at it before starting it again (deploy/README.md)")
    return START_TYPES[status]


def replication_task_failure(task: dict) -> str:
    """What DMS says about a task that is not where it should be."""
    return (
        f"DMS task {task['ReplicationTaskIdentifier']} is {task['Status']}"
        f"; stop reason: {task.get('StopReason') or '-'}"
        f"; last failure: {task.get('LastFailureMessage') or '-'}"
    )


def full_load_under_way(task: dict) -> bool:
    stats = task.get("ReplicationTaskStats") or {}
    return bool(
        stats.get("FullLoadStartDate")
        or stats.get("TablesLoading")
        or stats.get("TablesLoaded")
        or stats.get("FullLoadProgressPercent")
    )


def full_load_finished(task: dict) -> bool:
    return (task.get("ReplicationTaskStats") or {}).get("FullLoadProgressPercent") == 100


@dataclass
class ReplicationTask:
    dms: Any  # boto3 dms client
    arn: str
    deadline_s: float = TASK_DEADLINE_S
    poll_s: float = POLL_S

    def describe(self) -> dict:
        (task,) = self.dms.describe_replication_tasks(
            Filters=[{"Name": "replication-task-arn", "Values": [self.arn]}], WithoutSettings=True
        )["ReplicationTasks"]
        return task

    def wait(self, *, done: Callable[[dict], bool], failed: Callable[[dict], bool], what: str) -> dict:
        """Poll until `done`; exit non-zero with DMS's reasons when `failed` or at the deadline."""
        deadline = time.monotonic() + self.deadline_s
        while True:
            task = self.describe()
            if done(task):
                return task
            if failed(task):
                raise SystemExit(f"{replication_task_failure(task)} (waiting until {what})")
            if time.monotonic() > deadline:
                raise SystemExit(f"{replication_task_failure(task)} after {self.deadline_s:.0f} s waiting until {what}")
            time.sleep(self.poll_s)

    def settled(self) -> dict:
        return self.wait(
            done=lambda t: t["Status"] not in TRANSITIONAL, failed=lambda t: False, what="it is no longer busy"
        )

    def stop(self) -> None:
        """Stop a running task and wait until it is stopped; a task that never ran, or is
        stopped, is left as it is."""
        task = self.settled()
        if task["Status"] in ("ready", "stopped"):
            print(f"warehouse: DMS task is {task['Status']}: nothing to stop")
            return
        if task["Status"] != "running":
            raise SystemExit(f"{replication_task_failure(task)}: see deploy/README.md before releasing")
        if not full_load_finished(task):
            progress = (task.get("ReplicationTaskStats") or {}).get("FullLoadProgressPercent")
            raise SystemExit(
                f"DMS task {task['ReplicationTaskIdentifier']} is still in its full load ({progress} %): "
                "release once it has finished"
            )
        self.dms.stop_replication_task(ReplicationTaskArn=self.arn)
        self.wait(
            done=lambda t: t["Status"] == "stopped",
            failed=lambda t: t["Status"] not in ("running", "stopping"),
            what="it is stopped",
        )
        print("warehouse: DMS task stopped")

    def start(self) -> None:
        """Start or resume the task and wait until it runs, its full load under way after a
        first start."""
        task = self.settled()
        start_type = replication_task_start_type(status=task["Status"])
        if start_type:
            self.dms.start_replication_task(ReplicationTaskArn=self.arn, StartReplicationTaskType=start_type)
        first = start_type == "start-replication"
        self.wait(
            done=lambda t: t["Status"] == "running" and (not first or full_load_under_way(t)),
            # A started task passes through "starting" only: stopped, failed or back to
            # ready means DMS gave up (a missing grant, slot or table).
            failed=lambda t: t["Status"] not in ("starting", "running"),
            what="it runs" + (" its full load" if first else ""),
        )
        print(f"warehouse: DMS task was {task['Status']}: {start_type or 'left running'}, now running")


# --- Entry point ---------------------------------------------------------------------------


def stack_outputs(*, stage: str, cloudformation: Any) -> dict[str, str]:
    (stack,) = cloudformation.describe_stacks(StackName=f"ZeTracking-{stage}")["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def warehouse_release(*, step: str, outputs: dict[str, str], data: Any, dms: Any, secrets: Any) -> None:
    warehouse = Warehouse(
        data=data,
        workgroup=outputs["RedshiftWorkgroupName"],
        database=outputs["RedshiftDatabase"],
        secret_arn=outputs["RedshiftAdminSecretArn"],
    )
    task = ReplicationTask(dms=dms, arn=outputs["AnalyticsTaskArn"])
    if step == "before":
        warehouse_users_sync(
            warehouse=warehouse, secrets=secrets, secret_arns=[outputs[name] for name in WAREHOUSE_USER_OUTPUTS]
        )
        warehouse_migrate(warehouse=warehouse)
        task.stop()
    elif step == "after":
        task.start()
    elif step == "dedupe":
        task.stop()
        warehouse_dedupe(warehouse=warehouse)
        task.start()
    else:
        raise SystemExit(f"unknown step {step!r}: before, after or dedupe")


if __name__ == "__main__":
    import boto3  # the release machine has it; the CDK tests import this module without it

    stage_, step_ = sys.argv[1:3]
    warehouse_release(
        step=step_,
        outputs=stack_outputs(stage=stage_, cloudformation=boto3.client("cloudformation")),
        data=boto3.client("redshift-data"),
        dms=boto3.client("dms"),
        secrets=boto3.client("secretsmanager"),
    )
