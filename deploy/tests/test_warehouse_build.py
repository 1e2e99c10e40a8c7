"""The warehouse build (ze_infra/warehouse_build.py): dbt against Redshift from the released
bundle, nightly and after each release, alarmed when it fails."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

STAGES = ["dev", "prod"]


def _project(template) -> dict:
    (project,) = [
        p for p in template.find_resources("AWS::CodeBuild::Project").values()
        if p["Properties"]["Name"].endswith("-warehouse-build")
    ]  # fmt: skip
    return project["Properties"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_build_runs_freshness_then_every_model_and_test_on_redshift(templates, stage):
    props = _project(templates[stage])
    spec = json.dumps(props["Source"]["BuildSpec"])  # JSON joined with the secret's ARN
    freshness, build = "bash scripts/warehouse.sh dbt source freshness", "bash scripts/warehouse.sh dbt build"
    assert freshness in spec and build in spec and spec.index(freshness) < spec.index(build)
    env = {v["Name"]: v.get("Value") for v in props["Environment"]["EnvironmentVariables"]}
    assert env["WAREHOUSE_TARGET"] == "redshift" and env["WAREHOUSE_PORT"] == "5439"
    assert '\\"WAREHOUSE_USER\\":' in spec and '\\"WAREHOUSE_PASSWORD\\":' in spec
    # The released bundle release.sh puts there, in the private subnets.
    assert props["Source"]["Type"] == "S3"
    assert props["Source"]["Location"]["Fn::Join"][1][-1].endswith("/warehouse/current.zip")
    assert props["VpcConfig"]["Subnets"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_build_reaches_redshift_and_https_only(templates, stage):
    template = templates[stage]
    groups = template.find_resources(
        "AWS::EC2::SecurityGroup", {"Properties": {"GroupName": Match.string_like_regexp("warehouse-build")}}
    )
    ((group_id, group),) = groups.items()
    egress = group["Properties"]["SecurityGroupEgress"] if "SecurityGroupEgress" in group["Properties"] else []
    rules = egress + [
        r["Properties"] for r in template.find_resources("AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    ]  # fmt: skip
    assert sorted((r.get("FromPort"), r.get("ToPort")) for r in rules) == [(443, 443), (5439, 5439)]


@pytest.mark.parametrize("stage", STAGES)
def test_the_build_runs_nightly_and_a_failed_build_reaches_the_alarm_topic(templates, stage):
    template = templates[stage]
    (schedule,) = [
        s["Properties"] for s in template.find_resources("AWS::Scheduler::Schedule").values()
        if s["Properties"]["Name"].endswith("-warehouse-build")
    ]  # fmt: skip
    assert schedule["ScheduleExpression"] == "cron(0 4 * * ? *)"
    assert schedule["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:codebuild:startBuild"

    (rule,) = [
        r["Properties"] for r in template.find_resources("AWS::Events::Rule").values()
        if r["Properties"].get("Name", "").endswith("-warehouse-build-failed")
    ]  # fmt: skip
    assert rule["EventPattern"]["detail"]["build-status"] == ["FAILED", "TIMED_OUT", "STOPPED"]
    (target,) = rule["Targets"]
    alarms = [
        k
        for k, t in template.find_resources("AWS::SNS::Topic").items()
        if t["Properties"]["TopicName"].endswith("-alarms")
    ]
    assert target["Arn"] == {"Ref": alarms[0]}


def test_release_sh_builds_the_warehouse_from_the_released_bundle_and_waits():
    from pathlib import Path

    script = (Path(__file__).resolve().parents[1] / "eb" / "release.sh").read_text()
    assert "warehouse/current.zip" in script
    assert '--project-name "$APP-warehouse-build"' in script
