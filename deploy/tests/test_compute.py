from __future__ import annotations

import json
import re

from conftest import resources
from ze_infra.capacity import capacity_measured, web_requests_per_target_per_minute, worker_backlog_per_instance
from ze_infra.config import CELERY_QUEUES, STAGES

CONTRACT_ENV = {
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    "DB_HOST",
    "DB_PORT",
    "DB_NAME",
    "CELERY_BROKER_URL",
    "AWS_REGION",
    "SQS_PINGS_QUEUE_URL",
    "SQS_NOTIFICATIONS_QUEUE_URL",
    "SQS_MAINTENANCE_QUEUE_URL",
    "NOTIFICATIONS_BACKEND",
    "NOTIFICATIONS_SNS_TOPIC_ARN",
    "PUBLIC_BASE_URL",
    "DRF_NUM_PROXIES",
    "ZE_PROCESS",
}
CONTRACT_SECRETS = {"DJANGO_SECRET_KEY", "DB_USER", "DB_PASSWORD", "REDIS_URL", "NOTIFICATIONS_WEBHOOK_SECRET"}


def _envs(cfn: dict) -> dict[str, dict[tuple[str, str], object]]:
    out = {}
    for env in resources(cfn, "AWS::ElasticBeanstalk::Environment").values():
        props = env["Properties"]
        name = props["EnvironmentName"].rsplit("-", 1)[1]
        out[name] = {(o["Namespace"], o["OptionName"]): o["Value"] for o in props["OptionSettings"]}
        out[name][("tier", "Name")] = props["Tier"]["Name"]
    return out


def test_three_environments_web_worker_scheduler(cfn):
    envs = _envs(cfn)
    assert set(envs) == {"web", "worker", "scheduler"}
    assert envs["web"][("tier", "Name")] == "WebServer"
    assert envs["worker"][("tier", "Name")] == envs["scheduler"][("tier", "Name")] == "Worker"
    assert {e[("aws:elasticbeanstalk:application:environment", "ZE_PROCESS")] for e in envs.values()} == {
        "web",
        "worker",
        "scheduler",
    }


def test_web_sits_behind_an_https_alb_with_health_check_on_healthz(cfn, stage):
    web = _envs(cfn)["web"]
    assert web[("aws:elasticbeanstalk:environment", "LoadBalancerType")] == "application"
    assert web[("aws:elasticbeanstalk:environment:process:default", "HealthCheckPath")] == "/healthz"
    assert web[("aws:elbv2:listener:443", "Protocol")] == "HTTPS"
    assert web[("aws:elbv2:listener:default", "ListenerEnabled")] == "false"
    assert int(web[("aws:elbv2:loadbalancer", "IdleTimeout")]) >= 120  # websockets
    assert web[("aws:elbv2:loadbalancer", "AccessLogsS3Enabled")] == "true"
    assert web[("aws:autoscaling:asg", "MaxSize")] == str(STAGES[stage].web_max_instances)
    # The 5xx-rate alarm reads these environment metrics.
    metrics = json.loads(web[("aws:elasticbeanstalk:healthreporting:system", "ConfigDocument")])["CloudWatchMetrics"]
    assert {"ApplicationRequests5xx", "ApplicationRequestsTotal"} <= set(metrics["Environment"])


def test_scheduler_runs_one_beat_and_replaces_it_immutably(cfn):
    scheduler = _envs(cfn)["scheduler"]
    assert scheduler[("aws:autoscaling:asg", "MinSize")] == scheduler[("aws:autoscaling:asg", "MaxSize")] == "1"
    # The new beat starts before the old one stops; the Redis lock (celery-redbeat) makes it wait.
    assert scheduler[("aws:elasticbeanstalk:command", "DeploymentPolicy")] == "Immutable"
    assert scheduler[("aws:autoscaling:updatepolicy:rollingupdate", "RollingUpdateType")] == "Immutable"


def test_every_environment_updates_rolling_or_immutable(cfn, stage):
    for name, env in _envs(cfn).items():
        assert env[("aws:elasticbeanstalk:command", "DeploymentPolicy")] in {
            "Rolling", "RollingWithAdditionalBatch", "Immutable"
        }, name
        assert env[("aws:autoscaling:updatepolicy:rollingupdate", "RollingUpdateEnabled")] == "true", name
        assert env[("aws:autoscaling:updatepolicy:rollingupdate", "RollingUpdateType")] in {"Health", "Immutable"}
    cfg = STAGES[stage]
    envs = _envs(cfn)
    assert envs["web"][("aws:autoscaling:updatepolicy:rollingupdate", "MinInstancesInService")] == str(
        cfg.web_min_instances
    )
    assert envs["worker"][("aws:elasticbeanstalk:command", "DeploymentPolicy")] == "RollingWithAdditionalBatch"


def test_eb_default_scaling_triggers_can_never_fire(cfn):
    # EB always creates a high/low alarm pair; left at its NetworkOut default it would
    # scale in against the target-tracking policies.
    for name, env in _envs(cfn).items():
        assert env[("aws:autoscaling:trigger", "MeasureName")] == "CPUUtilization", name
        assert env[("aws:autoscaling:trigger", "Unit")] == "Percent", name
        assert float(env[("aws:autoscaling:trigger", "UpperThreshold")]) >= 100, name
        assert float(env[("aws:autoscaling:trigger", "LowerThreshold")]) <= 0, name


def _scaling_spec(cfn: dict) -> dict[str, dict]:
    (function,) = [
        f for f in resources(cfn, "AWS::Lambda::Function").values()
        if "SCALING" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    raw = function["Properties"]["Environment"]["Variables"]["SCALING"]
    # CloudFormation joins the JSON around the queue name (a Ref); put a marker there.
    parts = raw["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "ref:" + p["Fn::GetAtt"][0] for p in parts)
    return {env["environment"].rsplit("-", 1)[1]: env for env in json.loads(text)}


def _pings_queue_ids(cfn: dict, metrics: str) -> set[str]:
    return set(re.findall(r"ref:(\w+)", metrics))


def test_workers_track_the_pings_backlog_per_instance_counting_messages_in_flight(cfn, stage):
    cfg = STAGES[stage]
    worker = _scaling_spec(cfn)["worker"]
    assert worker["environment"] == f"{cfg.prefix}-worker"
    policies = {p["name"]: p for p in worker["policies"]}
    assert set(policies) == {"pings-backlog-per-instance", "pings-oldest-age"}
    backlog = policies["pings-backlog-per-instance"]["target_tracking"]
    # AWS's SQS guidance: acceptable latency / time per message, from the measured figures.
    latency = cfg.worker_acceptable_latency_seconds
    assert backlog["TargetValue"] == worker_backlog_per_instance(capacity_measured(), acceptable_latency_s=latency)
    metrics = {m["Id"]: m for m in backlog["CustomizedMetricSpecification"]["Metrics"]}
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in metrics.values() if "MetricStat" in m}
    assert names == {
        "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible", "GroupInServiceInstances",
    }  # fmt: skip
    (returned,) = [m for m in metrics.values() if m.get("ReturnData")]
    visible, in_flight = (
        next(i for i, m in metrics.items() if m.get("MetricStat", {}).get("Metric", {}).get("MetricName") == name)
        for name in ("ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible")
    )
    assert visible in returned["Expression"] and in_flight in returned["Expression"]
    # Only the pings queue, never the notifications or maintenance queues.
    pings = [k for k, v in resources(cfn, "AWS::SQS::Queue").items() if v["Properties"]["QueueName"].endswith("-pings")]
    assert _pings_queue_ids(cfn, json.dumps(backlog)) == {pings[0]}


def test_workers_step_out_on_the_age_of_the_oldest_pings_batch(cfn, stage):
    cfg = STAGES[stage]
    policy = {p["name"]: p for p in _scaling_spec(cfn)["worker"]["policies"]}["pings-oldest-age"]
    assert "target_tracking" not in policy
    step = policy["step_scaling"]
    assert step["AdjustmentType"] == "PercentChangeInCapacity" and step["MinAdjustmentMagnitude"] >= 1
    adjustments = [a["ScalingAdjustment"] for a in step["StepAdjustments"]]
    assert adjustments == sorted(adjustments) and adjustments[0] > 0
    alarm = policy["alarm"]
    assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage" and alarm["Statistic"] == "Maximum"
    assert alarm["Threshold"] == cfg.worker_queue_age_scale_out_seconds
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    pings = [k for k, v in resources(cfn, "AWS::SQS::Queue").items() if v["Properties"]["QueueName"].endswith("-pings")]
    assert _pings_queue_ids(cfn, json.dumps(alarm)) == {pings[0]}


def test_web_scales_on_request_count_per_target_at_half_its_measured_capacity(cfn, stage):
    (policy,) = _scaling_spec(cfn)["web"]["policies"]
    spec = policy["target_tracking"]["PredefinedMetricSpecification"]
    assert spec["PredefinedMetricType"] == "ALBRequestCountPerTarget"
    assert spec["ResourceLabel"] == "${ResourceLabel}"  # resolved against the current ALB at run time
    capacity = capacity_measured()
    assert policy["target_tracking"]["TargetValue"] == web_requests_per_target_per_minute(capacity)
    assert policy["target_tracking"]["TargetValue"] == int(capacity.web_requests_per_s_per_instance * 30)


def test_a_failing_scaling_reconciler_alarms(cfn, stage):
    prefix = STAGES[stage].prefix
    alarms = {a["Properties"]["AlarmName"]: a["Properties"] for a in resources(cfn, "AWS::CloudWatch::Alarm").values()}
    errors, dead = alarms[f"{prefix}-scaling-reconciler-errors"], alarms[f"{prefix}-scaling-reconciler-dlq-not-empty"]
    assert errors["MetricName"] == "Errors" and errors["Namespace"] == "AWS/Lambda"
    assert dead["MetricName"] == "ApproximateNumberOfMessagesVisible" and dead["Threshold"] == 0
    # A reconciler that stops running at all says so too.
    assert errors["TreatMissingData"] == "breaching"


def test_scaling_survives_eb_replacing_its_groups(cfn, stage):
    """No policy is bound to a group name in the template; a function keyed on the
    environment names re-applies them on EB's events and on a schedule."""
    prefix = STAGES[stage].prefix
    assert resources(cfn, "AWS::AutoScaling::ScalingPolicy") == {}
    rules = [r["Properties"] for r in resources(cfn, "AWS::Events::Rule").values()]
    on_change = [r for r in rules if r.get("EventPattern", {}).get("source") == ["aws.elasticbeanstalk"]]
    assert on_change and on_change[0]["EventPattern"]["detail"]["EnvironmentName"] == [f"{prefix}-web", f"{prefix}-worker"]
    assert any(r.get("ScheduleExpression") == "rate(5 minutes)" for r in rules)
    put = [
        s for p in resources(cfn, "AWS::IAM::Policy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "autoscaling:PutScalingPolicy" in s["Action"]
    ]
    assert put[0]["Condition"]["StringEquals"]["autoscaling:ResourceTag/elasticbeanstalk:environment-name"] == [
        f"{prefix}-web", f"{prefix}-worker"
    ]


def test_platform_is_the_recommended_version_of_a_branch(cfn, stage):
    lookups = [
        r for r in resources(cfn, "Custom::AWS").values() if "listPlatformVersions" in json.dumps(r["Properties"])
    ]
    assert len(lookups) == 1
    call = json.dumps(lookups[0]["Properties"])
    assert STAGES[stage].platform_branch in call and "recommended" in call
    for env in resources(cfn, "AWS::ElasticBeanstalk::Environment").values():
        assert "SolutionStackName" not in env["Properties"]
        assert "PlatformArn" in env["Properties"]


def test_an_unknown_platform_branch_fails_synth():
    import dataclasses

    import pytest
    from aws_cdk import App, Environment
    from ze_infra.stack import ZeTrackingStack

    cfg = dataclasses.replace(STAGES["dev"], platform_branch="Python 3.11 running on 64bit Amazon Linux 2")
    with pytest.raises(ValueError, match="unknown Elastic Beanstalk platform branch"):
        ZeTrackingStack(App(), "Bad", cfg=cfg, env=Environment(region=cfg.region))


def test_every_environment_gets_the_app_contract(cfn):
    for name, env in _envs(cfn).items():
        plain = {k for (ns, k) in env if ns == "aws:elasticbeanstalk:application:environment"}
        secret = {k for (ns, k) in env if ns == "aws:elasticbeanstalk:application:environmentsecrets"}
        assert CONTRACT_ENV <= plain, (name, CONTRACT_ENV - plain)
        assert CONTRACT_SECRETS <= secret, (name, CONTRACT_SECRETS - secret)
        assert not plain & secret
        assert env[("aws:elasticbeanstalk:application:environment", "CELERY_BROKER_URL")] == "sqs://"
        assert env[("aws:elasticbeanstalk:application:environment", "DJANGO_DEBUG")] == "false"


def test_queue_urls_point_at_the_queues_of_the_same_name(cfn):
    logical = {v["Properties"]["QueueName"]: k for k, v in resources(cfn, "AWS::SQS::Queue").items()}
    env = _envs(cfn)["worker"]
    for name in CELERY_QUEUES:
        ref = env[("aws:elasticbeanstalk:application:environment", f"SQS_{name.upper()}_QUEUE_URL")]
        (queue_name,) = [q for q, lid in logical.items() if lid == ref["Ref"]]
        assert queue_name.endswith(f"-{name}")


def test_secrets_are_references_never_values(cfn):
    for env in _envs(cfn).values():
        for (ns, _), value in env.items():
            if ns == "aws:elasticbeanstalk:application:environmentsecrets":
                text = json.dumps(value)
                assert "Ref" in text and "resolve" not in text


def test_instances_have_no_public_address_and_imdsv2_only(cfn):
    for env in _envs(cfn).values():
        assert env[("aws:ec2:vpc", "AssociatePublicIpAddress")] == "false"
        assert env[("aws:autoscaling:launchconfiguration", "DisableIMDSv1")] == "true"


def test_every_database_client_verifies_auroras_certificate(cfn):
    from ze_infra.compute import RDS_CA_BUNDLE

    for name, env in _envs(cfn).items():
        assert env[("aws:elasticbeanstalk:application:environment", "DATABASE_SSLMODE")] == "verify-full", name
        assert env[("aws:elasticbeanstalk:application:environment", "DATABASE_SSLROOTCERT")] == RDS_CA_BUNDLE, name
    (project,) = resources(cfn, "AWS::CodeBuild::Project").values()
    variables = {v["Name"]: v["Value"] for v in project["Properties"]["Environment"]["EnvironmentVariables"]}
    assert variables["DATABASE_SSLMODE"] == "verify-full"
    assert variables["DATABASE_SSLROOTCERT"] == RDS_CA_BUNDLE


def test_the_app_trusts_exactly_the_two_proxies_in_front_of_it(cfn):
    """ALB then nginx each append to X-Forwarded-For: the client is the second entry from the
    right. Fewer would key the throttles on the load balancer; more, on what the client wrote."""
    for env in _envs(cfn).values():
        assert env[("aws:elasticbeanstalk:application:environment", "DRF_NUM_PROXIES")] == "2"
