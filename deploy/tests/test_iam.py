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


def _login_secrets(cfn: dict) -> dict[str, str]:
    """admin / dms -> logical id of the secret (as attached to the cluster)."""
    attachments = resources(cfn, "AWS::SecretsManager::SecretTargetAttachment")
    (admin,) = [k for k in attachments if "ClusterSecret" in k]
    (dms,) = [k for k in attachments if "DmsLogin" in k]
    return {"admin": admin, "dms": dms}


def test_no_instance_can_read_the_database_admin_or_dms_login(cfn):
    logins = _login_secrets(cfn)
    for suffix in ("-eb-web", "-eb-worker", "-eb-scheduler"):
        text = json.dumps(_statements(cfn, suffix))
        for name, secret_id in logins.items():
            assert secret_id not in text, (suffix, name)
    # Nor do the environments name them.
    for env in resources(cfn, "AWS::ElasticBeanstalk::Environment").values():
        text = json.dumps(env["Properties"]["OptionSettings"])
        assert all(secret_id not in text for secret_id in logins.values())
        assert "DB_ADMIN_SECRET_ARN" not in text


def _release_project(cfn) -> dict:
    (project,) = [
        p for p in resources(cfn, "AWS::CodeBuild::Project").values() if p["Properties"]["Name"].endswith("-release")
    ]
    return project


def test_only_the_release_task_reads_the_admin_and_dms_logins(cfn):
    logins = _login_secrets(cfn)
    readers = set()
    for policy in resources(cfn, "AWS::IAM::Policy").values():
        for s in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "secretsmanager:GetSecretValue" in s["Action"] and logins["admin"] in json.dumps(s["Resource"]):
                readers.update(r["Ref"] for r in policy["Properties"]["Roles"])
    project = _release_project(cfn)
    assert readers == {project["Properties"]["ServiceRole"]["Fn::GetAtt"][0]}
    variables = {v["Name"]: v for v in project["Properties"]["Environment"]["EnvironmentVariables"]}
    assert logins["admin"] in json.dumps(variables["DB_ADMIN_SECRET_ARN"])
    assert logins["dms"] in json.dumps(variables["DB_DMS_SECRET_ARN"])


def test_release_task_runs_in_the_private_subnets_reaching_only_aurora_and_https(cfn):
    props = _release_project(cfn)["Properties"]
    assert props["Environment"]["PrivilegedMode"] is False
    (sg_ref,) = props["VpcConfig"]["SecurityGroupIds"]
    sg_id = sg_ref["Fn::GetAtt"][0]
    sg = cfn["Resources"][sg_id]["Properties"]
    assert "SecurityGroupIngress" not in sg
    egress = {(e.get("FromPort"), e.get("CidrIp", "sg")) for e in sg["SecurityGroupEgress"]}
    egress |= {
        (e["Properties"]["FromPort"], "sg")
        for e in resources(cfn, "AWS::EC2::SecurityGroupEgress").values()
        if e["Properties"]["GroupId"] == {"Fn::GetAtt": [sg_id, "GroupId"]}
    }
    assert egress == {(443, "0.0.0.0/0"), (5432, "sg")}
    assert "release-database.sh" in json.dumps(props["Source"])


def test_dms_secret_role_reads_only_the_dms_login(cfn):
    statements = _statements(cfn, "-dms-secrets")
    reads = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    (read,) = reads
    assert "DmsLogin" in json.dumps(read["Resource"])
