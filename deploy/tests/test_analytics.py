from __future__ import annotations

import json

from conftest import resources
from ze_infra import analytics_tables as tables


def _task(cfn: dict) -> dict:
    (task,) = resources(cfn, "AWS::DMS::ReplicationTask").values()
    return task["Properties"]


def test_task_is_full_load_and_cdc(cfn):
    assert _task(cfn)["MigrationType"] == "full-load-and-cdc"


def test_mappings_select_exactly_the_analytics_tables(cfn):
    rules = json.loads(_task(cfn)["TableMappings"])["rules"]
    included = {
        r["object-locator"]["table-name"]
        for r in rules
        if r["rule-type"] == "selection" and r["rule-action"] == "include"
    }
    assert included == {*tables.TABLES, *tables.PING_PARTITION_PATTERNS}
    assert all(r["object-locator"]["schema-name"] == "public" for r in rules)
    for forbidden in ("couriers_user", "auth_user", "django_session", "authtoken_token", "%"):
        assert forbidden not in included


def test_ping_partitions_land_in_one_table_and_the_parent_is_not_loaded_twice(cfn):
    rules = json.loads(_task(cfn)["TableMappings"])["rules"]
    renames = {r["object-locator"]["table-name"]: r["value"] for r in rules if r.get("rule-action") == "rename"}
    assert renames == {p: "tracking_ping" for p in tables.PING_PARTITION_PATTERNS}
    excluded = [r["object-locator"]["table-name"] for r in rules if r.get("rule-action") == "exclude"]
    assert excluded == ["tracking_ping"]


def test_personal_columns_stay_behind(cfn):
    rules = json.loads(_task(cfn)["TableMappings"])["rules"]
    removed = {
        (r["object-locator"]["table-name"], r["object-locator"]["column-name"])
        for r in rules
        if r.get("rule-action") == "remove-column"
    }
    assert ("orders_order", "consumer_name") in removed
    assert ("couriers_courier", "name") in removed
    assert ("orders_order", "tracking_code") in removed


def test_source_is_aurora_over_tls_with_a_secret_and_target_is_redshift_serverless(cfn):
    endpoints = {
        e["Properties"]["EndpointType"]: e["Properties"] for e in resources(cfn, "AWS::DMS::Endpoint").values()
    }
    assert endpoints["source"]["EngineName"] == "aurora-postgresql"
    assert endpoints["source"]["SslMode"] == "require"
    assert "SecretsManagerSecretId" in endpoints["source"]["PostgreSqlSettings"]
    assert endpoints["target"]["EngineName"] == "redshift-serverless"
    assert "SecretsManagerSecretId" in endpoints["target"]["RedshiftSettings"]


def test_replication_instance_and_warehouse_are_private(template):
    template.has_resource_properties("AWS::DMS::ReplicationInstance", {"PubliclyAccessible": False})
    template.has_resource_properties(
        "AWS::RedshiftServerless::Workgroup", {"PubliclyAccessible": False, "EnhancedVpcRouting": True}
    )


def _settings(cfn: dict) -> dict:
    return json.loads(_task(cfn)["ReplicationTaskSettings"])


def _resolved(value) -> str:
    """A CloudFormation string with its references replaced by a placeholder."""
    if isinstance(value, str):
        return value
    ((function, args),) = value.items()
    assert function == "Fn::Join", value
    return args[0].join(part if isinstance(part, str) else "REF" for part in args[1])


def test_full_load_never_drops_or_empties_the_merged_ping_table(cfn):
    # Every partition is loaded into the one `tracking_ping`: DROP_AND_CREATE or
    # TRUNCATE_BEFORE_LOAD would wipe it once per partition, and history on any reload.
    assert _settings(cfn)["FullLoadSettings"]["TargetTablePrepMode"] == "DO_NOTHING"


def test_source_drops_truncates_and_alters_leave_the_warehouse_alone(cfn):
    assert _settings(cfn)["ChangeProcessingDdlHandlingPolicy"] == {
        "HandleSourceTableDropped": False,
        "HandleSourceTableTruncated": False,
        "HandleSourceTableAltered": False,
    }


def test_source_reports_rows_under_their_partition_and_captures_new_partitions(cfn):
    (source,) = [
        e["Properties"]
        for e in resources(cfn, "AWS::DMS::Endpoint").values()
        if e["Properties"]["EndpointType"] == "source"
    ]
    settings = source["PostgreSqlSettings"]
    assert settings["PluginName"] == "test-decoding"
    assert settings["CaptureDdls"] is True


def _endpoint(cfn: dict, kind: str) -> dict:
    endpoints = [e["Properties"] for e in resources(cfn, "AWS::DMS::Endpoint").values()]
    (endpoint,) = [e for e in endpoints if e["EndpointType"] == kind]
    return endpoint


def test_dms_creates_its_own_replication_slot(cfn):
    # DMS refuses to start a task whose endpoint names a slot unless the slot exists and the
    # task has a CdcStartPosition in it: nothing creates one, so DMS makes its own.
    settings = _endpoint(cfn, "source")["PostgreSqlSettings"]
    assert "SlotName" not in settings or "CdcStartPosition" in _task(cfn)


def test_heartbeat_writes_to_a_schema_the_dms_login_may_create_in(cfn):
    settings = _endpoint(cfn, "source")["PostgreSqlSettings"]
    assert settings["HeartbeatEnable"] is True
    assert settings["HeartbeatSchema"] == tables.DMS_HEARTBEAT_SCHEMA


def test_data_dms_cannot_write_as_it_is_stops_the_task_instead_of_being_altered(cfn):
    # TruncateColumns and AcceptAnyDate would load a cut string or a NULL date silently;
    # a LOB over LobMaxSize would be cut; a row in error would be logged and skipped.
    target = _endpoint(cfn, "target")["RedshiftSettings"]
    assert target.get("TruncateColumns", False) is False
    assert target.get("AcceptAnyDate", False) is False
    assert _endpoint(cfn, "source")["PostgreSqlSettings"]["FailTasksOnLobTruncation"] is True
    errors = _settings(cfn)["ErrorBehavior"]
    assert errors["DataTruncationErrorPolicy"] == "STOP_TASK"
    assert errors["DataErrorPolicy"] == "STOP_TASK"


def test_the_stack_never_starts_the_task(cfn):
    task = _task(cfn)
    assert not {"CdcStartPosition", "CdcStartTime"} & task.keys()
    (logical_id,) = resources(cfn, "AWS::DMS::ReplicationTask")
    custom = {
        k: v
        for k, v in cfn["Resources"].items()
        if v["Type"].startswith("Custom::") or v["Type"] == "AWS::CloudFormation::CustomResource"
    }
    for resource in custom.values():
        text = json.dumps(resource)
        assert logical_id not in text and "StartReplicationTask" not in text
    # The release step finds the task and the warehouse through the stack's outputs.
    assert {"AnalyticsTaskArn", "RedshiftWorkgroupName", "RedshiftDatabase", "RedshiftAdminSecretArn"} <= cfn[
        "Outputs"
    ].keys()


def test_privacy_rule_rounds_old_destinations_in_redshift_every_day(cfn):
    (schedule,) = [
        s for s in resources(cfn, "AWS::Scheduler::Schedule").values()
        if s["Properties"]["Name"].endswith("-warehouse-privacy")
    ]  # fmt: skip
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "cron(30 3 * * ? *)"
    assert props["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:redshiftdata:batchExecuteStatement"
    assert "KmsKeyArn" in props
    batch = json.loads(_resolved(props["Target"]["Input"]))
    assert batch["Database"] == "analytics"
    assert batch["WithEvent"] is True
    statements = batch["Sqls"]
    assert statements == tables.sql_statements(path=tables.WAREHOUSE_SQL / "privacy.sql")
    # Destinations first: every later statement reads the rounded ones.
    assert statements[0].startswith("UPDATE public.orders_order\nSET destination = ")
    assert {s.split()[1] for s in statements} == {
        "public.orders_order",
        "public.orders_orderevent",
        "public.tracking_orderlastlocation",
        "public.tracking_courierlastlocation",
        "public.tracking_ping",
    }
    for statement in statements:
        assert statement.startswith("UPDATE ") and "DELETE" not in statement.upper()
        assert "DATEADD(day, -90, GETDATE())" in statement
    # What the statements do to a trip is tested on PostGIS:
    # tests/tracking/test_warehouse_privacy.py.


def test_privacy_rule_role_may_only_run_statements_on_the_warehouse(cfn):
    (schedule,) = [
        s for s in resources(cfn, "AWS::Scheduler::Schedule").values()
        if s["Properties"]["Name"].endswith("-warehouse-privacy")
    ]  # fmt: skip
    role_id = schedule["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in resources(cfn, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    actions = {
        a
        for statements in policies
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert "redshift-data:BatchExecuteStatement" in actions
    assert not {a for a in actions if a.endswith("*") and not a.startswith("kms:")}
    assert not {a for a in actions if a.startswith(("dms:", "redshift-data:Execute", "s3:"))}


def test_dms_reads_ddl_capture_from_the_admins_schema(cfn):
    (source,) = [e for e in resources(cfn, "AWS::DMS::Endpoint").values() if e["Properties"]["EndpointType"] == "source"]
    settings = source["Properties"]["PostgreSqlSettings"]
    # The schema deploy/eb/db_bootstrap.py creates for the admin login, not ze_app's public.
    assert settings["CaptureDdls"] is True and settings["DdlArtifactsSchema"] == "awsdms"


# --- Who signs in to Redshift: DMS and the privacy job each as a user of their own -------


def _secret(cfn: dict, name: str) -> tuple[str, dict]:
    (found,) = [
        (k, v["Properties"])
        for k, v in resources(cfn, "AWS::SecretsManager::Secret").items()
        if v["Properties"].get("Name") == name
    ]
    return found


def _redshift_secret(cfn: dict, stage: str, user: str) -> tuple[str, dict]:
    return _secret(cfn, f"ze-tracking-{stage}/redshift/{user}")


def _policies_of(cfn: dict, role_id: str) -> list[dict]:
    return [
        s
        for p in resources(cfn, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_dms_writes_to_the_warehouse_as_its_own_user_from_a_secret(cfn, stage):
    target = _endpoint(cfn, "target")
    # No login in the template: DMS reads host, port, user and password from the secret.
    assert not {"Username", "Password", "ServerName", "Port"} & target.keys()
    settings = target["RedshiftSettings"]
    secret_id, secret = _redshift_secret(cfn, stage, "dms")
    assert settings["SecretsManagerSecretId"] == {"Ref": secret_id}
    template = json.dumps(secret["GenerateSecretString"]["SecretStringTemplate"])
    for field in (f'\\"username\\":\\"{tables.REDSHIFT_DMS_USER}\\"', '\\"host\\":', '\\"port\\":5439'):
        assert field in template.replace(" ", ""), field
    assert tables.REDSHIFT_DMS_USER != "ze_admin"
    # Its access role reads that secret and no other.
    role_id = settings["SecretsManagerAccessRoleArn"]["Fn::GetAtt"][0]
    reads = [s for s in _policies_of(cfn, role_id) if "secretsmanager:GetSecretValue" in s["Action"]]
    assert [s["Resource"] for s in reads] == [{"Ref": secret_id}]


def test_privacy_job_signs_in_as_its_own_user_and_cannot_read_the_admin_secret(cfn, stage):
    (schedule,) = [
        s for s in resources(cfn, "AWS::Scheduler::Schedule").values()
        if s["Properties"]["Name"].endswith("-warehouse-privacy")
    ]  # fmt: skip
    secret_id, secret = _redshift_secret(cfn, stage, "privacy")
    assert json.loads(secret["GenerateSecretString"]["SecretStringTemplate"]) == {
        "username": tables.REDSHIFT_PRIVACY_USER
    }
    assert {"Ref": secret_id} in props_input_refs(schedule["Properties"]["Target"]["Input"])
    admin_id, _ = _redshift_secret(cfn, stage, "admin")
    role_id = schedule["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
    statements = _policies_of(cfn, role_id)
    assert admin_id not in json.dumps(statements)
    reads = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    assert [s["Resource"] for s in reads] == [{"Ref": secret_id}]


def props_input_refs(value) -> list:
    """The references inside a CloudFormation string built with Fn::Join."""
    if isinstance(value, str):
        return []
    ((_, args),) = value.items()
    return [part for part in args[1] if not isinstance(part, str)]


def test_no_stack_role_reads_the_admin_secret(cfn, stage):
    # The admin login is the release's (its CI credentials, outside the stack) and operators'.
    admin_id, _ = _redshift_secret(cfn, stage, "admin")
    for name, policy in resources(cfn, "AWS::IAM::Policy").items():
        assert admin_id not in json.dumps(policy["Properties"]["PolicyDocument"]), name


def test_the_warehouse_build_signs_in_as_its_own_user(cfn, stage):
    (build,) = [
        p["Properties"] for p in resources(cfn, "AWS::CodeBuild::Project").values()
        if p["Properties"]["Name"].endswith("-warehouse-build")
    ]  # fmt: skip
    secret_id, secret = _redshift_secret(cfn, stage, "dbt")
    assert json.loads(secret["GenerateSecretString"]["SecretStringTemplate"]) == {
        "username": tables.REDSHIFT_DBT_USER
    }
    spec = json.dumps(build["Source"]["BuildSpec"])
    assert secret_id in spec and _redshift_secret(cfn, stage, "admin")[0] not in spec
    role_id = build["ServiceRole"]["Fn::GetAtt"][0]
    reads = [s for s in _policies_of(cfn, role_id) if "secretsmanager:GetSecretValue" in s["Action"]]
    assert [s["Resource"] for s in reads] == [{"Ref": secret_id}]
    env = {v["Name"]: v["Value"] for v in build["Environment"]["EnvironmentVariables"]}
    assert env["WAREHOUSE_SCHEMA"] == tables.WAREHOUSE_BUILD_SCHEMA


def test_the_release_finds_the_warehouse_users_secrets_in_the_outputs(cfn):
    assert {"RedshiftDmsSecretArn", "RedshiftPrivacySecretArn", "RedshiftDbtSecretArn"} <= cfn["Outputs"].keys()
