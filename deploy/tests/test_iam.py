"""Least privilege: each role can do only what its service needs."""

from __future__ import annotations

import json

from conftest import resources


def _statements(cfn: dict, role_suffix: str) -> list[dict]:
    roles = {
        k
        for k, v in resources(cfn, "AWS::IAM::Role").items()
        if v["Properties"].get("RoleName", "").endswith(role_suffix)
    }
    assert roles, role_suffix
    out = []
    for policy in resources(cfn, "AWS::IAM::Policy").values():
        if any(r.get("Ref") in roles for r in policy["Properties"]["Roles"]):
            out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


def _actions(statements: list[dict]) -> set[str]:
    acts: set[str] = set()
    for s in statements:
        a = s["Action"]
        acts.update([a] if isinstance(a, str) else a)
    return acts


def test_no_policy_grants_a_service_wildcard(cfn):
    for policy in [*resources(cfn, "AWS::IAM::Policy").values(), *resources(cfn, "AWS::IAM::ManagedPolicy").values()]:
        for s in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
            assert not any(a == "*" or a.endswith(":*") for a in actions), s


def test_only_workers_consume_the_queues(cfn):
    assert "sqs:ReceiveMessage" in _actions(_statements(cfn, "-eb-worker"))
    assert "sqs:ReceiveMessage" not in _actions(_statements(cfn, "-eb-web"))


def test_scheduler_enqueues_periodic_tasks_but_never_pings(cfn):
    produce = [s for s in _statements(cfn, "-eb-scheduler") if "sqs:SendMessage" in s["Action"]]
    (statement,) = produce
    targets = json.dumps(statement["Resource"])
    assert "Maintenance" in targets and "Notifications" in targets and "Pings" not in targets
    assert "sqs:ReceiveMessage" not in _actions([s for s in _statements(cfn, "-eb-scheduler")
                                                 if "Daemon" not in json.dumps(s["Resource"])])


def test_only_workers_publish_notifications(cfn):
    assert "sns:Publish" in _actions(_statements(cfn, "-eb-worker"))
    assert "sns:Publish" not in _actions(_statements(cfn, "-eb-web"))
    assert "sns:Publish" not in _actions(_statements(cfn, "-eb-scheduler"))


def test_only_the_web_leader_can_read_the_database_admin_secret(cfn):
    # The cluster's admin secret, as attached to the cluster.
    (admin_id,) = [k for k in resources(cfn, "AWS::SecretsManager::SecretTargetAttachment") if "ClusterSecret" in k]
    for suffix, allowed in (("-eb-web", True), ("-eb-worker", False), ("-eb-scheduler", False)):
        text = json.dumps(_statements(cfn, suffix))
        assert (admin_id in text) is allowed, suffix


def test_dms_secret_role_reads_only_the_dms_login(cfn):
    statements = _statements(cfn, "-dms-secrets")
    reads = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    (read,) = reads
    assert "DmsLogin" in json.dumps(read["Resource"])
