"""Elastic Beanstalk's own log groups (instance logs and health) exist before the
environments stream to them, on the logs key and with the stage's retention: EB would
otherwise create them itself, unencrypted by any key of ours."""

from __future__ import annotations

from conftest import resources
from ze_infra.config import STAGES


def test_eb_streams_to_log_groups_the_stack_made_on_the_logs_key(cfn, stage):
    groups = {g["Properties"].get("LogGroupName"): (k, g) for k, g in resources(cfn, "AWS::Logs::LogGroup").items()}
    aliases = {
        a["Properties"]["AliasName"]: a["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]
        for a in resources(cfn, "AWS::KMS::Alias").values()
    }
    logs_key = aliases[f"alias/ze-tracking-{stage}/logs"]
    environments = resources(cfn, "AWS::ElasticBeanstalk::Environment").values()
    assert len(environments) == 3
    for env in environments:
        name = env["Properties"]["EnvironmentName"]
        for path in ("/var/log/eb-engine.log", "/var/log/web.stdout.log", "/var/log/nginx/error.log", "/environment-health.log"):  # noqa: E501
            group_name = f"/aws/elasticbeanstalk/{name}{path}"
            assert group_name in groups, group_name
            logical_id, group = groups[group_name]
            assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [logs_key, "Arn"]}
            assert group["Properties"]["RetentionInDays"] == STAGES[stage].log_retention_days
            assert logical_id in env.get("DependsOn", []), (name, logical_id)
