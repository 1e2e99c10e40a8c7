"""The Redshift side of the replicated tables (deploy/warehouse/) matches what DMS sends,
and the release step (deploy/warehouse/release.py) applies each warehouse migration once,
stops and starts the DMS task only when it should, and fails loudly otherwise.

DMS runs in moto, with the task's status set where moto does not model DMS's own moves.
moto has no BatchExecuteStatement and answers every query with the same canned rows, so
the Redshift Data API's answers are stubbed with botocore's Stubber."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
import time

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dms.models import FakeReplicationTask, dms_backends
from ze_infra import analytics_tables as tables

TABLES_SQL = tables.WAREHOUSE_SQL / "migrations" / "0001_replicated_tables.sql"


def _release():
    spec = importlib.util.spec_from_file_location("warehouse_release", tables.WAREHOUSE_SQL / "release.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _created() -> dict[str, str]:
    return {
        re.search(r"CREATE TABLE IF NOT EXISTS public\.(\w+)", s).group(1): s
        for s in tables.sql_statements(path=TABLES_SQL)
    }


def test_every_replicated_table_exists_in_the_warehouse_before_the_task_loads_it():
    assert set(_created()) == {*tables.TABLES, tables.PING_PARENT}


def test_columns_held_back_by_dms_have_no_column_in_the_warehouse():
    created = _created()
    for table, columns in tables.EXCLUDED_COLUMNS.items():
        for column in columns:
            assert not re.search(rf"^\s+{column}\s", created[table], re.M), f"{table}.{column}"


@pytest.mark.parametrize(
    ("table", "keys"),
    [
        ("tracking_ping", ("DISTKEY (courier_id)", "COMPOUND SORTKEY (recorded_at, courier_id)")),
        ("orders_order", ("DISTKEY (id)", "SORTKEY (created_at)")),
        ("orders_orderevent", ("DISTKEY (order_id)", "SORTKEY (recorded_at)")),
        ("couriers_courier", ("DISTSTYLE ALL",)),
    ],
)
def test_tables_are_laid_out_for_time_ranges_and_per_order_joins(table, keys):
    for key in keys:
        assert key in _created()[table]


@pytest.mark.parametrize(
    ("status", "start_type"),
    [("ready", "start-replication"), ("stopped", "resume-processing"), ("running", None)],
)
def test_release_starts_a_new_task_resumes_a_stopped_one_and_leaves_a_running_one(status, start_type):
    assert _release().replication_task_start_type(status=status) == start_type


def test_release_refuses_to_restart_a_failed_task():
    # A restarted full load appends again under DO_NOTHING: a person decides first.
    with pytest.raises(SystemExit, match="failed"):
        _release().replication_task_start_type(status="failed")


# --- The DMS task: the release waits until it runs, and says why when it does not --------

REGION = "sa-east-1"
TARGET = {"WorkgroupName": "ze-tracking-dev-analytics", "Database": "analytics", "SecretArn": "s"}


@pytest.fixture
def aws(monkeypatch):
    for key, value in {
        "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


@pytest.fixture
def task(aws):
    """The stage's task as CloudFormation leaves it: created, ready, never started."""
    dms = boto3.client("dms", region_name=REGION)
    arn = dms.create_replication_task(
        ReplicationTaskIdentifier="ze-tracking-dev-analytics",
        SourceEndpointArn="arn:aws:dms:sa-east-1:123456789012:endpoint:source",
        TargetEndpointArn="arn:aws:dms:sa-east-1:123456789012:endpoint:target",
        ReplicationInstanceArn="arn:aws:dms:sa-east-1:123456789012:rep:instance",
        MigrationType="full-load-and-cdc",
        TableMappings="{}",
    )["ReplicationTask"]["ReplicationTaskArn"]
    _moto_task(arn).ready()
    release = _release()
    return release.ReplicationTask(dms=dms, arn=arn, deadline_s=2, poll_s=0.05)


def _moto_task(arn: str):
    return dms_backends[DEFAULT_ACCOUNT_ID][REGION].replication_tasks[arn]


def _task_fails_to_start(monkeypatch, *, status: str, message: str) -> None:
    """DMS accepts the start, then gives up (moto's task would run at once)."""

    def start(self):
        self.status = status
        return self

    def to_dict(self, original=FakeReplicationTask.to_dict):
        return {**original(self), "LastFailureMessage": message, "StopReason": "FATAL_ERROR"}

    monkeypatch.setattr(FakeReplicationTask, "start", start)
    monkeypatch.setattr(FakeReplicationTask, "to_dict", to_dict)


def test_first_start_waits_until_the_task_runs_its_full_load(task, capsys):
    task.start()

    assert task.describe()["Status"] == "running"
    assert "ready: start-replication, now running" in capsys.readouterr().out


@pytest.mark.parametrize("status", ["failed", "stopped"])
def test_a_task_that_does_not_reach_running_fails_the_release_with_dms_reason(task, monkeypatch, status):
    _task_fails_to_start(monkeypatch, status=status, message="Replication slot could not be created")

    with pytest.raises(SystemExit, match=f"is {status}.*FATAL_ERROR.*Replication slot could not be created"):
        task.start()


def test_a_task_still_starting_at_the_deadline_fails_the_release(task, monkeypatch):
    _task_fails_to_start(monkeypatch, status="starting", message="")
    started = time.monotonic()

    with pytest.raises(SystemExit, match="is starting.*after 2 s"):
        task.start()
    assert time.monotonic() - started < 10


def test_running_without_any_table_loading_is_not_yet_a_start(task, monkeypatch):
    # Running, but the full load never began (every stat empty): the release waits, then fails.
    def to_dict(self, original=FakeReplicationTask.to_dict):
        described = original(self)
        return {**described, "ReplicationTaskStats": {"FullLoadProgressPercent": 0, "TablesLoaded": 0}}

    monkeypatch.setattr(FakeReplicationTask, "to_dict", to_dict)

    with pytest.raises(SystemExit, match="is running.*waiting until it runs its full load"):
        task.start()


def test_before_stops_a_running_task_and_after_resumes_it(task):
    task.start()

    task.stop()
    assert task.describe()["Status"] == "stopped"
    task.start()
    assert task.describe()["Status"] == "running"


def test_a_task_still_in_its_first_full_load_is_not_stopped(task, monkeypatch):
    # Resumed, it would load again the tables it had not finished, appending their rows.
    task.start()

    def to_dict(self, original=FakeReplicationTask.to_dict):
        described = original(self)
        described["ReplicationTaskStats"]["FullLoadProgressPercent"] = 40
        return described

    monkeypatch.setattr(FakeReplicationTask, "to_dict", to_dict)

    with pytest.raises(SystemExit, match=r"still in its full load \(40 %\)"):
        task.stop()
    assert task.describe()["Status"] == "running"


def test_a_task_that_never_ran_is_not_stopped_before_the_migrations(task):
    task.stop()

    assert task.describe()["Status"] == "ready"


def test_a_failed_task_stops_the_release_before_anything_migrates(task):
    _moto_task(task.arn).status = "failed"

    with pytest.raises(SystemExit, match="is failed"):
        task.stop()
    with pytest.raises(SystemExit, match="'failed'"):
        task.start()


# --- Warehouse migrations: each once, in order; a half-applied one is reported -----------


class DataApi:
    """The Data API's answers, in the order the release asks (botocore's Stubber)."""

    def __init__(self):
        self.client = boto3.client("redshift-data", region_name=REGION)
        self.stub = Stubber(self.client)
        self.count = 0

    def _id(self) -> str:
        self.count += 1
        return f"00000000-0000-0000-0000-{self.count:012d}"

    def batch(self, sqls, *, status: str = "FINISHED") -> None:
        statement_id = self._id()
        self.stub.add_response(
            "batch_execute_statement",
            {"Id": statement_id},
            {"Sqls": sqls, "StatementName": ANY, **TARGET},
        )
        answer = {"Id": statement_id, "Status": status}
        if status == "FAILED":
            answer["Error"] = 'ERROR: column "x" of relation "t" already exists'
        self.stub.add_response("describe_statement", answer, {"Id": statement_id})

    def query(self, rows: list[tuple], *, sql=ANY) -> None:
        statement_id = self._id()
        self.stub.add_response("execute_statement", {"Id": statement_id}, {"Sql": sql, "StatementName": ANY, **TARGET})
        self.stub.add_response("describe_statement", {"Id": statement_id, "Status": "FINISHED"}, {"Id": statement_id})
        records = [
            [{"booleanValue": value} if isinstance(value, bool) else {"stringValue": value} for value in row]
            for row in rows
        ]
        self.stub.add_response("get_statement_result", {"Records": records}, {"Id": statement_id})


@pytest.fixture
def migrations(tmp_path):
    (tmp_path / "0001_tables.sql").write_text("-- the tables\nCREATE TABLE t (a INT);\n")
    (tmp_path / "0002_add_x.sql").write_text("ALTER TABLE t ADD COLUMN x INT;\n")
    return tmp_path


@pytest.fixture
def data_api(aws):
    api = DataApi()
    with api.stub:
        yield api
        api.stub.assert_no_pending_responses()


def _migrate(data_api: DataApi, folder):
    release = _release()
    warehouse = release.Warehouse(
        data=data_api.client, workgroup=TARGET["WorkgroupName"], database="analytics", secret_arn="s", poll_s=0
    )
    return release.warehouse_migrate(warehouse=warehouse, folder=folder)


def _started(name: str) -> list[str]:
    return [f"INSERT INTO public.warehouse_migrations (name, started_at) VALUES ('{name}', GETDATE())"]


def _applied(name: str, *statements: str) -> list[str]:
    return [*statements, f"UPDATE public.warehouse_migrations SET applied_at = GETDATE() WHERE name = '{name}'"]


def test_migrations_apply_in_order_each_with_its_ledger_row_in_its_own_transaction(data_api, migrations):
    release = _release()
    data_api.batch([release.LEDGER_DDL])
    data_api.query([])
    data_api.batch(_started("0001_tables.sql"))
    data_api.batch(_applied("0001_tables.sql", "CREATE TABLE t (a INT)"))
    data_api.batch(_started("0002_add_x.sql"))
    data_api.batch(_applied("0002_add_x.sql", "ALTER TABLE t ADD COLUMN x INT"))

    assert _migrate(data_api, migrations) == ["0001_tables.sql", "0002_add_x.sql"]


def test_an_applied_migration_is_skipped_not_run_again(data_api, migrations):
    release = _release()
    data_api.batch([release.LEDGER_DDL])
    data_api.query([("0001_tables.sql", True)])
    data_api.batch(_started("0002_add_x.sql"))
    data_api.batch(_applied("0002_add_x.sql", "ALTER TABLE t ADD COLUMN x INT"))

    assert _migrate(data_api, migrations) == ["0002_add_x.sql"]


def test_a_half_applied_migration_stops_the_release_before_anything_runs(data_api, migrations):
    release = _release()
    data_api.batch([release.LEDGER_DDL])
    data_api.query([("0001_tables.sql", True), ("0002_add_x.sql", False)])

    with pytest.raises(SystemExit, match="0002_add_x.sql was started and never recorded as applied"):
        _migrate(data_api, migrations)


def test_a_failed_migration_is_rolled_back_forgotten_and_fails_the_release(data_api, migrations):
    release = _release()
    data_api.batch([release.LEDGER_DDL])
    data_api.query([("0001_tables.sql", True)])
    data_api.batch(_started("0002_add_x.sql"))
    data_api.batch(_applied("0002_add_x.sql", "ALTER TABLE t ADD COLUMN x INT"), status="FAILED")
    data_api.batch(["DELETE FROM public.warehouse_migrations WHERE name = '0002_add_x.sql' AND applied_at IS NULL"])

    with pytest.raises(SystemExit, match="0002_add_x.sql: FAILED: .*already exists.*rolled back"):
        _migrate(data_api, migrations)


def test_a_warehouse_ahead_of_this_checkout_is_refused():
    with pytest.raises(SystemExit, match="missing from this checkout: 0003_z.sql"):
        _release().migrations_pending(files=["0001_a.sql"], ledger={"0001_a.sql": True, "0003_z.sql": True})


def test_the_warehouse_migrations_are_named_in_order():
    names = _release().migration_files()
    assert names[0] == "0001_replicated_tables.sql"
    assert [name[:4] for name in names] == [f"{i:04d}" for i in range(1, len(names) + 1)]


# --- The whole release: before (migrations, stop), after (start, wait) ----------------------


def _outputs(task, users) -> dict[str, str]:
    return {
        "RedshiftWorkgroupName": TARGET["WorkgroupName"],
        "RedshiftDatabase": "analytics",
        "RedshiftAdminSecretArn": "s",
        "AnalyticsTaskArn": task.arn,
        **users,
    }


def _release_step(step: str, *, task, data_api, users=None) -> None:
    # Every answer is final at once here, so the release's own deadlines and pauses apply.
    _release().warehouse_release(
        step=step,
        outputs=_outputs(task, users or {}),
        data=data_api.client,
        dms=task.dms,
        secrets=boto3.client("secretsmanager", region_name=REGION),
    )


def test_a_release_migrates_the_warehouse_then_stops_the_task_and_restarts_it_at_the_end(
    task, data_api, warehouse_users
):
    release = _release()
    task.start()  # a task that runs since an earlier release
    data_api.query([])
    data_api.batch([_user_statement("CREATE", user) for user in PASSWORDS])
    data_api.batch([release.LEDGER_DDL])
    data_api.query([])
    for name in release.migration_files():
        migration = tables.WAREHOUSE_SQL / "migrations" / name
        data_api.batch(_started(name))
        data_api.batch(_applied(name, *tables.sql_statements(path=migration)))

    _release_step("before", task=task, data_api=data_api, users=warehouse_users)
    assert task.describe()["Status"] == "stopped"  # while Aurora migrates
    _release_step("after", task=task, data_api=data_api)
    assert task.describe()["Status"] == "running"


def test_a_half_applied_migration_fails_the_release_before_the_task_is_stopped(task, data_api, warehouse_users):
    release = _release()
    task.start()
    data_api.query([(user,) for user in PASSWORDS])
    data_api.batch([_user_statement("ALTER", user) for user in PASSWORDS])
    data_api.batch([release.LEDGER_DDL])
    data_api.query([("0001_replicated_tables.sql", False)])

    with pytest.raises(SystemExit, match="0001_replicated_tables.sql was started and never recorded"):
        _release_step("before", task=task, data_api=data_api, users=warehouse_users)
    assert task.describe()["Status"] == "running"


# --- Warehouse users: DMS and the privacy job sign in as users of their own ----------------

# In name order, the order the release sends their statements.
PASSWORDS = {
    "ze_dbt": "Dbt0password0from0the0secret",
    "ze_dms": "Dms0password0from0the0secret",
    "ze_privacy": "Privacy0password0from0the0secret",
}


def _md5(user: str) -> str:
    return "md5" + hashlib.md5((PASSWORDS[user] + user).encode()).hexdigest()


def _user_statement(verb: str, user: str) -> str:
    return f"{verb} USER {user} PASSWORD '{_md5(user)}' NOCREATEDB NOCREATEUSER"


@pytest.fixture
def warehouse_users(aws) -> dict[str, str]:
    """The two secrets as the stack leaves them (ze_infra/analytics.py), by output name."""
    secrets = boto3.client("secretsmanager", region_name=REGION)
    out = {}
    for output, user, extra in (
        ("RedshiftDmsSecretArn", "ze_dms", {"host": "wg.example", "port": 5439}),
        ("RedshiftPrivacySecretArn", "ze_privacy", {}),
        ("RedshiftDbtSecretArn", "ze_dbt", {}),
    ):
        out[output] = secrets.create_secret(
            Name=f"ze-tracking-dev/redshift/{user.removeprefix('ze_')}",
            SecretString=json.dumps({"username": user, "password": PASSWORDS[user], **extra}),
        )["ARN"]
    return out


def test_a_missing_user_is_created_with_no_right_to_create_users_or_databases():
    statement = _release().warehouse_user_statement(username="ze_dms", password=PASSWORDS["ze_dms"], exists=False)
    assert statement == _user_statement("CREATE", "ze_dms")


def test_an_existing_user_is_given_the_secrets_password_and_loses_any_such_right():
    # A password changed in Secrets Manager reaches Redshift at the next release, and a
    # user an operator made a superuser (CREATEUSER) is one no more.
    statement = _release().warehouse_user_statement(username="ze_dms", password=PASSWORDS["ze_dms"], exists=True)
    assert statement == _user_statement("ALTER", "ze_dms")


def test_the_password_never_appears_in_the_statement():
    # Statements are kept in the Data API's history and Redshift's logs: only Redshift's
    # MD5 form of the password (md5 of password and user name) is sent.
    for exists in (False, True):
        statement = _release().warehouse_user_statement(username="ze_privacy", password="Secret0Value", exists=exists)
        assert "Secret0Value" not in statement


@pytest.mark.parametrize("username", ["ze_admin", "ze dms", "ze_dms; DROP TABLE t", "ZE_DMS", "", "rdsdb"])
def test_a_user_name_other_than_the_warehouse_users_is_refused(username):
    with pytest.raises(SystemExit, match="warehouse user"):
        _release().warehouse_user_statement(username=username, password="Secret0Value", exists=False)


def test_users_are_created_when_missing_and_altered_when_present_in_one_transaction(data_api, warehouse_users):
    data_api.query(
        [("ze_privacy",)], sql="SELECT usename FROM pg_user WHERE usename IN ('ze_dbt', 'ze_dms', 'ze_privacy')"
    )
    data_api.batch(
        [
            _user_statement("CREATE", "ze_dbt"),
            _user_statement("CREATE", "ze_dms"),
            _user_statement("ALTER", "ze_privacy"),
        ]
    )

    release = _release()
    warehouse = release.Warehouse(
        data=data_api.client, workgroup=TARGET["WorkgroupName"], database="analytics", secret_arn="s", poll_s=0
    )
    release.warehouse_users_sync(
        warehouse=warehouse,
        secrets=boto3.client("secretsmanager", region_name=REGION),
        secret_arns=list(warehouse_users.values()),
    )


# --- Their grants: what DMS and the privacy job need, nothing more -------------------------


def _grants(grantee: str) -> dict[str, set[str]]:
    """Object -> privileges granted to `grantee` by the warehouse migrations."""
    out: dict[str, set[str]] = {}
    for name in _release().migration_files():
        for statement in tables.sql_statements(path=tables.WAREHOUSE_SQL / "migrations" / name):
            match = re.fullmatch(r"GRANT (.+) ON (.+) TO (\w+)", " ".join(statement.split()))
            if match and match.group(3) == grantee:
                privileges = {p.strip() for p in match.group(1).split(",")}
                for target in match.group(2).split(","):
                    out.setdefault(target.strip(), set()).update(privileges)
    return out


def test_dms_may_write_every_replicated_table_and_create_its_own_tables_only_in_public():
    grants = _grants(tables.REDSHIFT_DMS_USER)
    expected = {f"public.{t}" for t in (*tables.TABLES, tables.PING_PARENT)}
    table_grants = {k.removeprefix("TABLE "): v for k, v in grants.items() if not k.startswith("SCHEMA ")}
    assert set(table_grants) == expected
    for table, privileges in table_grants.items():
        assert privileges == {"SELECT", "INSERT", "UPDATE", "DELETE"}, table
    # Its control and apply tables (awsdms_*) are its own, in the target schema.
    assert grants["SCHEMA public"] == {"USAGE", "CREATE"}


def test_the_privacy_job_may_read_and_update_only_the_tables_its_statements_name():
    statements = tables.sql_statements(path=tables.WAREHOUSE_SQL / "privacy.sql")
    named = {t for s in statements for t in re.findall(r"\bpublic\.(\w+)", s)}
    grants = _grants(tables.REDSHIFT_PRIVACY_USER)
    assert grants.pop("SCHEMA public") == {"USAGE"}
    assert {k.removeprefix("TABLE public.").removeprefix("public.") for k in grants} == named
    updated = {s.split()[1].removeprefix("public.") for s in statements}
    for table, privileges in grants.items():
        name = table.removeprefix("TABLE public.").removeprefix("public.")
        assert privileges == ({"SELECT", "UPDATE"} if name in updated else {"SELECT"}), table


def _migrations_code() -> str:
    return "\n".join(
        statement
        for name in _release().migration_files()
        for statement in tables.sql_statements(path=tables.WAREHOUSE_SQL / "migrations" / name)
    )


def test_the_warehouse_build_reads_the_replicated_tables_and_owns_only_its_schema():
    grants = _grants(tables.REDSHIFT_DBT_USER)
    assert grants.pop("SCHEMA public") == {"USAGE"}
    assert grants == {f"public.{t}": {"SELECT"} for t in (*tables.TABLES, tables.PING_PARENT)}
    # dbt builds, replaces and drops its models in its own schema, which it owns.
    code = " ".join(_migrations_code().split())
    schema, user = tables.WAREHOUSE_BUILD_SCHEMA, tables.REDSHIFT_DBT_USER
    assert f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {user}" in code
    assert f"ALTER SCHEMA {schema} OWNER TO {user}" in code


def test_no_migration_makes_a_superuser_or_grants_everything():
    for name in _release().migration_files():
        text = (tables.WAREHOUSE_SQL / "migrations" / name).read_text().upper()
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        assert not re.search(r"(?<!NO)CREATEUSER|\bGRANT ALL\b|ALL PRIVILEGES|\bSUPERUSER\b", code), name
