from __future__ import annotations

import json

from conftest import resources
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
    assert web[("aws:autoscaling:trigger", "MeasureName")] == "CPUUtilization"
    # The 5xx-rate alarm reads these environment metrics.
    metrics = json.loads(web[("aws:elasticbeanstalk:healthreporting:system", "ConfigDocument")])["CloudWatchMetrics"]
    assert {"ApplicationRequests5xx", "ApplicationRequestsTotal"} <= set(metrics["Environment"])


def test_scheduler_runs_exactly_one_beat(cfn):
    scheduler = _envs(cfn)["scheduler"]
    assert scheduler[("aws:autoscaling:asg", "MinSize")] == scheduler[("aws:autoscaling:asg", "MaxSize")] == "1"
    assert scheduler[("aws:elasticbeanstalk:command", "DeploymentPolicy")] == "AllAtOnce"


def test_workers_scale_on_the_pings_backlog(cfn, stage):
    (policy,) = resources(cfn, "AWS::AutoScaling::ScalingPolicy").values()
    spec = policy["Properties"]["TargetTrackingConfiguration"]
    assert spec["TargetValue"] == STAGES[stage].worker_backlog_per_instance
    metrics = json.dumps(spec["CustomizedMetricSpecification"])
    assert "ApproximateNumberOfMessagesVisible" in metrics and "GroupInServiceInstances" in metrics


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
