"""Keeps scaling policies on the Auto Scaling group an Elastic Beanstalk environment has
*now*: target tracking, and step scaling with the CloudWatch alarm that drives it.

EB owns its environments' Auto Scaling groups and load balancers and replaces them on a
rebuild (or some configuration changes): a policy attached once, by a fixed name, would
silently vanish with the old group. This function is keyed on the environment name. It
runs on EB's own events and every few minutes, looks the current group up, and applies
the policies again (PutScalingPolicy creates or updates, so a run that changes nothing
is harmless).

Steps, per environment in SCALING (JSON, set by deploy/ze_infra/compute.py):
1. describe the environment's resources; no group yet (being created) -> skip, next run;
2. turn on the group metrics target tracking on GroupInServiceInstances needs;
3. substitute ${AutoScalingGroupName} and ${ResourceLabel} (ALB/target group) into each
   policy and put it;
4. for a step policy, put its alarm (one per environment and policy, named after both)
   with the policy's ARN as its action, so the alarm follows the group EB has now.
"""

from __future__ import annotations

import json
import logging
import os

import boto3

logger = logging.getLogger()
logger.setLevel(logging.INFO)

eb = boto3.client("elasticbeanstalk")
autoscaling = boto3.client("autoscaling")
cloudwatch = boto3.client("cloudwatch")
elbv2 = boto3.client("elbv2")


def resource_label_get(*, load_balancer_arn: str) -> str:
    """ALBRequestCountPerTarget's label: app/<lb>/<id>/targetgroup/<tg>/<id>."""
    groups = elbv2.describe_target_groups(LoadBalancerArn=load_balancer_arn)["TargetGroups"]
    return f"{load_balancer_arn.split(':loadbalancer/')[1]}/{groups[0]['TargetGroupArn'].split(':')[-1]}"


def environment_policies_apply(*, environment: str, policies: list[dict]) -> list[str]:
    resources = eb.describe_environment_resources(EnvironmentName=environment)["EnvironmentResources"]
    if not resources["AutoScalingGroups"]:
        logger.info("%s has no Auto Scaling group yet", environment)
        return []
    group = resources["AutoScalingGroups"][0]["Name"]
    autoscaling.enable_metrics_collection(
        AutoScalingGroupName=group, Granularity="1Minute", Metrics=["GroupInServiceInstances"]
    )
    text = json.dumps(policies).replace("${AutoScalingGroupName}", group)
    if "${ResourceLabel}" in text:
        # For an application load balancer, EB reports the ARN as the name.
        label = resource_label_get(load_balancer_arn=resources["LoadBalancers"][0]["Name"])
        text = text.replace("${ResourceLabel}", label)
    applied = []
    for policy in json.loads(text):
        if "step_scaling" in policy:
            autoscaling.put_scaling_policy(
                AutoScalingGroupName=group, PolicyName=policy["name"], PolicyType="StepScaling",
                **policy["step_scaling"],
            )  # fmt: skip
            (put,) = autoscaling.describe_policies(AutoScalingGroupName=group, PolicyNames=[policy["name"]])[
                "ScalingPolicies"
            ]
            arn = put["PolicyARN"]
            cloudwatch.put_metric_alarm(
                AlarmName=f"{environment}-{policy['name']}",
                AlarmDescription=f"Steps {environment} out (policy {policy['name']} on its current group)",
                AlarmActions=[arn],
                **policy["alarm"],
            )
        else:
            autoscaling.put_scaling_policy(
                AutoScalingGroupName=group,
                PolicyName=policy["name"],
                PolicyType="TargetTrackingScaling",
                TargetTrackingConfiguration=policy["target_tracking"],
            )
        applied.append(f"{group}/{policy['name']}")
    logger.info("applied %s", applied)
    return applied


def handler(event, context):
    applied = []
    for env in json.loads(os.environ["SCALING"]):
        applied += environment_policies_apply(environment=env["environment"], policies=env["policies"])
    return applied
