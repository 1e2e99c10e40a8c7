"""One key per data class: the database (Aurora, Redis and their logins), the logs (every
log group), the warehouse (Redshift, DMS, its staging bucket, its logins, the warehouse
build), the rest (queues, topics, the app's secrets). A role that may use one key cannot use
the others' data through it."""

from __future__ import annotations

import json

from conftest import resources


def _keys(cfn: dict) -> dict[str, str]:
    """Alias name → the key's logical id."""
    return {
        a["Properties"]["AliasName"]: a["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]
        for a in resources(cfn, "AWS::KMS::Alias").values()
    }


def _key_of(value) -> str:
    text = json.dumps(value)
    (key,) = {k for k in _all_keys if f'"{k}"' in text}
    return key


_all_keys: set[str] = set()


def _by_class(cfn: dict, stage: str) -> dict[str, str]:
    keys = _keys(cfn)
    prefix = f"alias/ze-tracking-{stage}"
    _all_keys.clear()
    _all_keys.update(resources(cfn, "AWS::KMS::Key"))
    return {
        "data": keys[prefix],
        "database": keys[f"{prefix}/database"],
        "logs": keys[f"{prefix}/logs"],
        "warehouse": keys[f"{prefix}/warehouse"],
    }


def test_every_log_group_is_on_the_logs_key(cfn, stage):
    keys = _by_class(cfn, stage)
    groups = resources(cfn, "AWS::Logs::LogGroup")
    assert groups
    for name, group in groups.items():
        assert _key_of(group["Properties"]["KmsKeyId"]) == keys["logs"], name


def test_aurora_and_redis_are_on_the_database_key(cfn, stage):
    keys = _by_class(cfn, stage)
    (cluster,) = resources(cfn, "AWS::RDS::DBCluster").values()
    assert _key_of(cluster["Properties"]["KmsKeyId"]) == keys["database"]
    for redis in resources(cfn, "AWS::ElastiCache::ReplicationGroup").values():
        assert _key_of(redis["Properties"]["KmsKeyId"]) == keys["database"]
    aurora_secrets = [
        s for s in resources(cfn, "AWS::SecretsManager::Secret").values() if "/aurora/" in json.dumps(s["Properties"])
    ]
    assert aurora_secrets
    for secret in aurora_secrets:
        assert _key_of(secret["Properties"]["KmsKeyId"]) == keys["database"]


def test_queues_stay_on_the_data_key(cfn, stage):
    keys = _by_class(cfn, stage)
    for queue in resources(cfn, "AWS::SQS::Queue").values():
        assert _key_of(queue["Properties"]["KmsMasterKeyId"]) == keys["data"]


def test_only_the_logs_key_serves_cloudwatch_logs(cfn, stage):
    keys = _by_class(cfn, stage)
    for name, key in resources(cfn, "AWS::KMS::Key").items():
        serves_logs = "logs." in json.dumps(key["Properties"]["KeyPolicy"])
        assert serves_logs == (name == keys["logs"]), name


def test_the_warehouse_and_dms_are_on_the_warehouse_key(cfn, stage):
    keys = _by_class(cfn, stage)
    (namespace,) = resources(cfn, "AWS::RedshiftServerless::Namespace").values()
    assert _key_of(namespace["Properties"]["KmsKeyId"]) == keys["warehouse"]
    (instance,) = resources(cfn, "AWS::DMS::ReplicationInstance").values()
    assert _key_of(instance["Properties"]["KmsKeyId"]) == keys["warehouse"]
    for name, endpoint in resources(cfn, "AWS::DMS::Endpoint").items():
        assert _key_of(endpoint["Properties"]["KmsKeyId"]) == keys["warehouse"], name
    (target,) = [
        e["Properties"] for e in resources(cfn, "AWS::DMS::Endpoint").values()
        if e["Properties"]["EndpointType"] == "target"
    ]  # fmt: skip
    assert _key_of(target["RedshiftSettings"]["ServerSideEncryptionKmsKeyId"]) == keys["warehouse"]
    (staging,) = [
        b for b in resources(cfn, "AWS::S3::Bucket").values()
        if target["RedshiftSettings"]["BucketName"] == {"Ref": _logical_id(cfn, b)}
    ]  # fmt: skip
    (rule,) = staging["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert _key_of(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]) == keys["warehouse"]
    warehouse_secrets = [
        s for s in resources(cfn, "AWS::SecretsManager::Secret").values() if "/redshift/" in s["Properties"]["Name"]
    ]
    assert len(warehouse_secrets) == 4
    for secret in warehouse_secrets:
        assert _key_of(secret["Properties"]["KmsKeyId"]) == keys["warehouse"], secret["Properties"]["Name"]
    for name, schedule in resources(cfn, "AWS::Scheduler::Schedule").items():
        if "warehouse" in schedule["Properties"]["Name"]:
            assert _key_of(schedule["Properties"]["KmsKeyArn"]) == keys["warehouse"], name
    (build,) = [
        p for p in resources(cfn, "AWS::CodeBuild::Project").values()
        if p["Properties"]["Name"].endswith("-warehouse-build")
    ]  # fmt: skip
    assert _key_of(build["Properties"]["EncryptionKey"]) == keys["warehouse"]


def _logical_id(cfn: dict, resource: dict) -> str:
    (found,) = [k for k, v in cfn["Resources"].items() if v is resource]
    return found


def test_nothing_outside_the_warehouse_uses_the_warehouse_key(cfn, stage):
    keys = _by_class(cfn, stage)
    for queue in resources(cfn, "AWS::SQS::Queue").values():
        assert keys["warehouse"] not in json.dumps(queue)
    for topic in resources(cfn, "AWS::SNS::Topic").values():
        assert keys["warehouse"] not in json.dumps(topic)
    for name, secret in resources(cfn, "AWS::SecretsManager::Secret").items():
        if "/redshift/" not in secret["Properties"]["Name"]:
            assert keys["warehouse"] not in json.dumps(secret), name


def test_instance_roles_use_neither_the_logs_key_nor_the_database_key_beyond_their_secrets(cfn, stage):
    keys = _by_class(cfn, stage)
    instance_roles = {
        name
        for name, role in resources(cfn, "AWS::IAM::Role").items()
        if "ec2.amazonaws.com" in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    }
    assert instance_roles
    for policy in resources(cfn, "AWS::IAM::Policy").values():
        if not {r.get("Ref") for r in policy["Properties"]["Roles"]} & instance_roles:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            text = json.dumps(statement)
            assert keys["logs"] not in text, statement
            assert keys["warehouse"] not in text, statement
            # No key by wildcard: each statement names the keys it uses.
            if any(a.startswith("kms:") for a in json.dumps(statement["Action"]).split('"')):
                assert statement["Resource"] != "*", statement
            if keys["database"] in text:
                # Reading its database login through Secrets Manager, nothing else.
                assert "kms:ViaService" in json.dumps(statement.get("Condition", {})), statement
