"""The scaling reconciler (ze_infra/scaling/index.py) puts the policies on whatever group
an environment has now, and again on the new group after EB replaces it.

Auto Scaling and ELB run in moto; moto has no DescribeEnvironmentResources, so EB's answer
(which group and load balancer the environment has) is stubbed with botocore's Stubber."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

HANDLER = Path(__file__).resolve().parents[1] / "ze_infra" / "scaling" / "index.py"
REGION = "sa-east-1"
SPEC = [
    {
        "environment": "ze-tracking-dev-web",
        "policies": [
            {
                "name": "requests-per-target",
                "target_tracking": {
                    "TargetValue": 9000.0,
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "ALBRequestCountPerTarget",
                        "ResourceLabel": "${ResourceLabel}",
                    },
                },
            }
        ],
    },
    {
        "environment": "ze-tracking-dev-worker",
        "policies": [
            {
                "name": "pings-backlog-per-instance",
                "target_tracking": {
                    "TargetValue": 200.0,
                    "CustomizedMetricSpecification": {
                        "MetricName": "GroupInServiceInstances",
                        "Namespace": "AWS/AutoScaling",
                        "Dimensions": [{"Name": "AutoScalingGroupName", "Value": "${AutoScalingGroupName}"}],
                        "Statistic": "Average",
                    },
                },
            },
            {
                "name": "pings-oldest-age",
                "step_scaling": {
                    "AdjustmentType": "PercentChangeInCapacity",
                    "MinAdjustmentMagnitude": 1,
                    "MetricAggregationType": "Maximum",
                    "StepAdjustments": [
                        {"MetricIntervalLowerBound": 0.0, "MetricIntervalUpperBound": 30.0, "ScalingAdjustment": 10},
                        {"MetricIntervalLowerBound": 30.0, "ScalingAdjustment": 25},
                    ],
                },
                "alarm": {
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateAgeOfOldestMessage",
                    "Dimensions": [{"Name": "QueueName", "Value": "ze-tracking-dev-pings"}],
                    "Statistic": "Maximum",
                    "Period": 60,
                    "EvaluationPeriods": 2,
                    "Threshold": 30.0,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "TreatMissingData": "notBreaching",
                },
            },
        ],
    },
]


@pytest.fixture
def aws(monkeypatch):
    for key, value in {
        "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "SCALING": json.dumps(SPEC),
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    with mock_aws():
        spec = importlib.util.spec_from_file_location("scaling_index", HANDLER)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


def _group(name: str, env: str, subnet: str) -> str:
    asg = boto3.client("autoscaling", region_name=REGION)
    asg.create_launch_configuration(LaunchConfigurationName=name, ImageId="ami-12c6146b", InstanceType="t4g.small")
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchConfigurationName=name, MinSize=0, MaxSize=2, VPCZoneIdentifier=subnet,
        Tags=[{"Key": "elasticbeanstalk:environment-name", "Value": env, "PropagateAtLaunch": True}],
    )  # fmt: skip
    return name


def _policies(group: str) -> dict[str, dict]:
    found = boto3.client("autoscaling", region_name=REGION).describe_policies(AutoScalingGroupName=group)
    return {p["PolicyName"]: p for p in found["ScalingPolicies"]}


def _age_alarm() -> dict:
    (alarm,) = boto3.client("cloudwatch", region_name=REGION).describe_alarms(
        AlarmNames=["ze-tracking-dev-worker-pings-oldest-age"]
    )["MetricAlarms"]
    return alarm


def _eb_answers(module, answers: dict[str, tuple[str, str | None]]) -> Stubber:
    stub = Stubber(module.eb)
    for env, (group, lb) in answers.items():
        stub.add_response(
            "describe_environment_resources",
            {"EnvironmentResources": {
                "EnvironmentName": env, "AutoScalingGroups": [{"Name": group}],
                "LoadBalancers": [{"Name": lb}] if lb else [],
            }},
            {"EnvironmentName": env},
        )  # fmt: skip
    stub.activate()
    return stub


def test_policies_follow_the_environment_onto_a_replaced_group(aws):
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    elb = boto3.client("elbv2", region_name=REGION)
    lb = elb.create_load_balancer(Name="awseb-web", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elb.create_target_group(Name="awseb-default", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]
    elb.create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )  # fmt: skip
    web = _group("awseb-web-asg-1", "ze-tracking-dev-web", subnets[0])
    worker = _group("awseb-worker-asg-1", "ze-tracking-dev-worker", subnets[0])

    stub = _eb_answers(aws, {"ze-tracking-dev-web": (web, lb), "ze-tracking-dev-worker": (worker, None)})
    applied = aws.handler({}, None)
    stub.assert_no_pending_responses()

    assert applied == [
        f"{web}/requests-per-target", f"{worker}/pings-backlog-per-instance", f"{worker}/pings-oldest-age",
    ]  # fmt: skip
    label = _policies(web)["requests-per-target"]["TargetTrackingConfiguration"]["PredefinedMetricSpecification"][
        "ResourceLabel"
    ]
    assert label == f"{lb.split(':loadbalancer/')[1]}/{tg['TargetGroupArn'].split(':')[-1]}"
    dims = _policies(worker)["pings-backlog-per-instance"]["TargetTrackingConfiguration"][
        "CustomizedMetricSpecification"
    ]["Dimensions"]
    assert dims == [{"Name": "AutoScalingGroupName", "Value": worker}]
    # The age of the oldest batch steps the group out through an alarm on that group's policy.
    age = _policies(worker)["pings-oldest-age"]
    assert age["PolicyType"] == "StepScaling"
    assert _age_alarm()["AlarmActions"] == [age["PolicyARN"]]

    # EB rebuilds the worker environment: a new group, no policy on it until the next run.
    stub.deactivate()
    replaced = _group("awseb-worker-asg-2", "ze-tracking-dev-worker", subnets[0])
    assert _policies(replaced) == {}
    stub = _eb_answers(aws, {"ze-tracking-dev-web": (web, lb), "ze-tracking-dev-worker": (replaced, None)})
    aws.handler({}, None)

    assert set(_policies(replaced)) == {"pings-backlog-per-instance", "pings-oldest-age"}
    assert _policies(replaced)["pings-backlog-per-instance"]["TargetTrackingConfiguration"][
        "CustomizedMetricSpecification"
    ]["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": replaced}]
    # One alarm per environment, now acting on the new group's step policy.
    assert _age_alarm()["AlarmActions"] == [_policies(replaced)["pings-oldest-age"]["PolicyARN"]]


def test_an_environment_without_a_group_yet_is_skipped(aws):
    stub = Stubber(aws.eb)
    for env in ("ze-tracking-dev-web", "ze-tracking-dev-worker"):
        stub.add_response(
            "describe_environment_resources",
            {"EnvironmentResources": {"EnvironmentName": env, "AutoScalingGroups": [], "LoadBalancers": []}},
            {"EnvironmentName": env},
        )
    stub.activate()

    assert aws.handler({}, None) == []
