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
    assert "{{resolve:secretsmanager:" in json.dumps(endpoints["target"]["Password"])


def test_replication_instance_and_warehouse_are_private(template):
    template.has_resource_properties("AWS::DMS::ReplicationInstance", {"PubliclyAccessible": False})
    template.has_resource_properties(
        "AWS::RedshiftServerless::Workgroup", {"PubliclyAccessible": False, "EnhancedVpcRouting": True}
    )


def test_dms_reads_ddl_capture_from_the_admins_schema(cfn):
    (source,) = [e for e in resources(cfn, "AWS::DMS::Endpoint").values() if e["Properties"]["EndpointType"] == "source"]
    settings = source["Properties"]["PostgreSqlSettings"]
    # The schema deploy/eb/db_bootstrap.py creates for the admin login, not ze_app's public.
    assert settings["CaptureDdls"] is True and settings["DdlArtifactsSchema"] == "awsdms"
