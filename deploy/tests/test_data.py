from __future__ import annotations

import json

from aws_cdk import assertions
from conftest import resources
from ze_infra.config import STAGES


def test_aurora_is_serverless_v2_postgres_encrypted_with_backups(template, stage):
    cfg = STAGES[stage]
    template.has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "Engine": "aurora-postgresql",
            "EngineVersion": cfg.aurora_engine_version,
            "StorageEncrypted": True,
            "KmsKeyId": assertions.Match.any_value(),
            "BackupRetentionPeriod": cfg.backup_retention_days,
            "DeletionProtection": cfg.deletion_protection,
            "ServerlessV2ScalingConfiguration": {"MinCapacity": cfg.aurora_min_acu, "MaxCapacity": cfg.aurora_max_acu},
            "EnableCloudwatchLogsExports": ["postgresql"],
        },
    )


def test_aurora_has_a_writer_and_the_configured_readers(template, stage):
    template.resource_count_is("AWS::RDS::DBInstance", 1 + STAGES[stage].aurora_readers)
    template.all_resources_properties(
        "AWS::RDS::DBInstance", {"DBInstanceClass": "db.serverless", "PubliclyAccessible": False}
    )


def test_aurora_credentials_come_from_secrets_manager(cfn):
    (cluster,) = resources(cfn, "AWS::RDS::DBCluster").values()
    password = json.dumps(cluster["Properties"]["MasterUserPassword"])
    assert "{{resolve:secretsmanager:" in password


def test_cluster_parameters_enable_logical_replication_for_dms(template):
    template.has_resource_properties(
        "AWS::RDS::DBClusterParameterGroup",
        {"Parameters": assertions.Match.object_like({"rds.logical_replication": "1", "rds.force_ssl": "1"})},
    )


def test_three_database_logins_each_in_an_encrypted_secret(cfn, stage):
    prefix = STAGES[stage].prefix
    names = {
        s["Properties"].get("Name"): s["Properties"] for s in resources(cfn, "AWS::SecretsManager::Secret").values()
    }
    for user in ("admin", "ze_app", "ze_dms"):
        assert "KmsKeyId" in names[f"{prefix}/aurora/{user}"]
    assert all("KmsKeyId" in s for s in names.values())


def test_redis_encrypts_in_transit_and_at_rest_and_requires_a_token(template, stage):
    cfg = STAGES[stage]
    template.has_resource_properties(
        "AWS::ElastiCache::ReplicationGroup",
        {
            "Engine": "redis",
            "TransitEncryptionEnabled": True,
            "TransitEncryptionMode": "required",
            "AtRestEncryptionEnabled": True,
            "KmsKeyId": assertions.Match.any_value(),
            "AuthToken": assertions.Match.any_value(),
            "ReplicasPerNodeGroup": cfg.redis_replicas,
            "MultiAZEnabled": cfg.redis_replicas > 0,
        },
    )


def test_redis_token_never_appears_in_the_template(cfn):
    (group,) = resources(cfn, "AWS::ElastiCache::ReplicationGroup").values()
    assert "{{resolve:secretsmanager:" in json.dumps(group["Properties"]["AuthToken"])
