from __future__ import annotations

import json

from conftest import environment_variables, log_group_names, resources
from ze_infra.config import CELERY_QUEUES, METRICS_NAMESPACE, STAGES


def _alarms(cfn: dict) -> dict[str, dict]:
    return {a["Properties"]["AlarmName"]: a["Properties"] for a in resources(cfn, "AWS::CloudWatch::Alarm").values()}


def test_on_call_alarms_exist(cfn, stage):
    prefix = STAGES[stage].prefix
    names = set(_alarms(cfn))
    expected = {
        *(f"{prefix}-queue-{q}-age" for q in CELERY_QUEUES),
        *(f"{prefix}-queue-{q}-depth" for q in CELERY_QUEUES),
        *(f"{prefix}-dlq-{q}-not-empty" for q in CELERY_QUEUES),
        f"{prefix}-web-5xx-rate",
        f"{prefix}-db-cpu",
        f"{prefix}-db-connections",
        f"{prefix}-db-replica-lag",
        f"{prefix}-dms-cdclatencysource",
        f"{prefix}-dms-cdclatencytarget",
    }
    assert expected <= names, expected - names


def test_every_alarm_notifies_the_alarm_topic(cfn):
    topic = [
        k for k, v in resources(cfn, "AWS::SNS::Topic").items() if v["Properties"]["TopicName"].endswith("-alarms")
    ]
    for name, alarm in _alarms(cfn).items():
        assert alarm["AlarmActions"] == [{"Ref": topic[0]}], name


def test_a_single_dead_lettered_message_alarms(cfn):
    for name, alarm in _alarms(cfn).items():
        if "-dlq-" in name:
            assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_new_on_call_alarms_exist(cfn, stage):
    prefix = STAGES[stage].prefix
    expected = {
        f"{prefix}-beat-heartbeat-missing",
        f"{prefix}-web-lb-5xx",
        f"{prefix}-web-unhealthy-hosts",
        f"{prefix}-web-environment-health",
        f"{prefix}-worker-environment-health",
        f"{prefix}-scheduler-environment-health",
        f"{prefix}-redis-memory",
        f"{prefix}-redis-evictions",
        f"{prefix}-redshift-queries-failed",
        f"{prefix}-ping-freshness",
    }
    assert expected <= set(_alarms(cfn)), expected - set(_alarms(cfn))


def test_a_silent_beat_alarms_after_twice_its_shortest_schedule(cfn, stage):
    cfg = STAGES[stage]
    alarm = _alarms(cfn)[f"{cfg.prefix}-beat-heartbeat-missing"]
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["Namespace"] == METRICS_NAMESPACE and alarm["MetricName"] == "BeatHeartbeat"
    assert alarm["Dimensions"] == [{"Name": "Stage", "Value": stage}]
    assert alarm["Period"] * alarm["EvaluationPeriods"] == 2 * cfg.beat_shortest_schedule_seconds
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["Threshold"] == 1


def test_silence_breaches_where_silence_means_trouble(cfn, stage):
    prefix = STAGES[stage].prefix
    alarms = _alarms(cfn)
    for name in (
        "dms-cdclatencysource",
        "dms-cdclatencytarget",
        "web-environment-health",
        "web-unhealthy-hosts",
        "beat-heartbeat-missing",
    ):
        assert alarms[f"{prefix}-{name}"]["TreatMissingData"] == "breaching", name


def test_load_balancer_alarms_follow_the_environment_not_a_fixed_load_balancer(cfn, stage):
    prefix = STAGES[stage].prefix
    for name in ("web-lb-5xx", "web-unhealthy-hosts"):
        (query,) = [m for m in _alarms(cfn)[f"{prefix}-{name}"]["Metrics"] if "Expression" in m]
        assert "AWS/ApplicationELB" in query["Expression"]
        assert f"tag.\"elasticbeanstalk:environment-name\" = '{prefix}-web'" in query["Expression"]


def test_dms_events_reach_the_alarm_topic(cfn, stage):
    prefix = STAGES[stage].prefix
    topic = [
        k for k, v in resources(cfn, "AWS::SNS::Topic").items() if v["Properties"]["TopicName"].endswith("-alarms")
    ]
    subs = {
        s["Properties"]["SourceType"]: s["Properties"] for s in resources(cfn, "AWS::DMS::EventSubscription").values()
    }
    assert subs["replication-task"]["SnsTopicArn"] == {"Ref": topic[0]}
    assert subs["replication-task"]["SourceIds"] == [f"{prefix}-analytics"]
    assert {"failure", "state change"} <= set(subs["replication-task"]["EventCategories"])
    assert subs["replication-instance"]["SnsTopicArn"] == {"Ref": topic[0]}


def test_one_dashboard_shows_the_service_on_one_page(cfn, stage):
    (dashboard,) = resources(cfn, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "PingsAccepted",  # ingest rate
        "ApproximateAgeOfOldestMessage",  # queue age
        "BatchLatency",
        "QueueLag",
        "Freshness",
        "NotificationsSent",
        "NotificationsFailed",
        "ACUUtilization",  # database
        "DatabaseMemoryUsagePercentage",  # Redis
        "Evictions",
    ):
        assert metric in body, metric


def test_every_environment_writes_emf_metrics_to_the_shipped_log_group(cfn):
    groups = log_group_names(cfn)
    for env in resources(cfn, "AWS::ElasticBeanstalk::Environment").values():
        options = environment_variables(env)
        assert options["METRICS_EMF_PATH"].startswith("/var/log/")
        assert options["METRICS_EMF_LOG_GROUP"]["Ref"] in groups
        assert options["METRICS_NAMESPACE"] == METRICS_NAMESPACE


def test_the_cloudwatch_agent_ships_the_file_the_app_writes():
    from pathlib import Path

    from ze_infra.compute import METRICS_EMF_PATH

    config = (Path(__file__).resolve().parents[2] / ".ebextensions" / "20_metrics.config").read_text()
    assert f'"file_path": "{METRICS_EMF_PATH}"' in config
    assert '"OptionName": "METRICS_EMF_LOG_GROUP"' in config


def test_each_environment_alarms_on_its_fullest_root_filesystem(cfn, stage):
    """EB enhanced health publishes every instance's root filesystem use; the alarm takes the
    fullest instance of the environment, whatever instances EB runs."""
    prefix = STAGES[stage].prefix
    alarms = _alarms(cfn)
    for role in ("web", "worker", "scheduler"):
        alarm = alarms[f"{prefix}-{role}-disk-used"]
        (query,) = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]
        assert "MAX(RootFilesystemUtil)" in query and '"AWS/ElasticBeanstalk", EnvironmentName, InstanceId' in query
        assert f"EnvironmentName = '{prefix}-{role}'" in query
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] <= 90

    for env in resources(cfn, "AWS::ElasticBeanstalk::Environment").values():
        options = {(o["Namespace"], o["OptionName"]): o["Value"] for o in env["Properties"]["OptionSettings"]}
        health = json.loads(options[("aws:elasticbeanstalk:healthreporting:system", "ConfigDocument")])
        assert "RootFilesystemUtil" in health["CloudWatchMetrics"]["Instance"], env["Properties"]["EnvironmentName"]


def _topic_ref(cfn: dict) -> dict:
    (topic,) = [
        k for k, v in resources(cfn, "AWS::SNS::Topic").items() if v["Properties"]["TopicName"].endswith("-alarms")
    ]
    return {"Ref": topic}


def test_a_failed_privacy_run_reaches_the_alarm_topic(cfn, stage):
    prefix = STAGES[stage].prefix
    (schedule,) = [
        s for s in resources(cfn, "AWS::Scheduler::Schedule").values()
        if s["Properties"]["Name"].endswith("-warehouse-privacy")
    ]  # fmt: skip
    assert f'StatementName\\":\\"{prefix}-warehouse-privacy' in json.dumps(schedule["Properties"]["Target"]["Input"])
    rules = [
        r["Properties"]
        for r in resources(cfn, "AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.redshift-data"]
    ]
    (rule,) = rules
    pattern = rule["EventPattern"]
    assert pattern["detail-type"] == ["Redshift Data Statement Status Change"]
    assert set(pattern["detail"]["state"]) == {"FAILED", "ABORTED"}
    assert pattern["detail"]["statementName"] == [f"{prefix}-warehouse-privacy"]
    assert [t["Arn"] for t in rule["Targets"]] == [_topic_ref(cfn)]
    # EventBridge may use the stage key of the encrypted topic, for this account's rules only.
    (key,) = [k for k in resources(cfn, "AWS::KMS::Key").values() if k["Properties"]["Description"].endswith("data at rest")]
    policies = [p["Properties"]["PolicyDocument"] for p in resources(cfn, "AWS::SNS::TopicPolicy").values()]
    events = [
        s
        for document in (key["Properties"]["KeyPolicy"], *policies)
        for s in document["Statement"]
        if s.get("Principal") == {"Service": "events.amazonaws.com"}
    ]
    assert {s["Action"] if isinstance(s["Action"], str) else s["Action"][0] for s in events} == {
        "sns:Publish",
        "kms:Decrypt",
    }
    for statement in events:
        assert "aws:SourceAccount" in json.dumps(statement.get("Condition"))
        assert f"rule/{prefix}-warehouse-privacy-failed" in json.dumps(statement["Condition"])
    # A call the scheduler could not make (no event is ever sent for it) alarms too.
    dropped = _alarms(cfn)[f"{prefix}-warehouse-privacy-not-run"]
    assert dropped["Namespace"] == "AWS/Scheduler" and dropped["MetricName"] == "InvocationDroppedCount"
    assert dropped["Threshold"] == 0 and dropped["ComparisonOperator"] == "GreaterThanThreshold"


def test_web_latency_p99_alarms(cfn, stage):
    cfg = STAGES[stage]
    alarm = _alarms(cfn)[f"{cfg.prefix}-web-latency-p99"]
    assert alarm["Namespace"] == "AWS/ElasticBeanstalk" and alarm["MetricName"] == "ApplicationLatencyP99"
    assert alarm["Dimensions"] == [{"Name": "EnvironmentName", "Value": f"{cfg.prefix}-web"}]
    assert alarm["Threshold"] == cfg.web_latency_p99_alarm_seconds


def test_redis_alarms_watch_every_node_so_they_follow_the_primary_after_a_failover(cfn, stage):
    cfg = STAGES[stage]
    nodes = {f"{cfg.prefix}-redis-{i:03d}" for i in range(1, cfg.redis_replicas + 2)}
    for name in ("redis-memory", "redis-evictions"):
        metrics = _alarms(cfn)[f"{cfg.prefix}-{name}"]["Metrics"]
        watched = {
            d["Value"]
            for m in metrics
            if "MetricStat" in m
            for d in m["MetricStat"]["Metric"]["Dimensions"]
            if d["Name"] == "CacheClusterId"
        }
        assert watched == nodes, name
        (expression,) = [m for m in metrics if "Expression" in m]
        assert expression["Expression"].startswith("MAX(")


def test_every_environment_writes_its_json_logs_to_a_file_the_agent_ships(cfn):
    # stdout reaches CloudWatch with a syslog prefix, which Logs Insights cannot parse as JSON.
    from pathlib import Path

    from ze_infra.compute import APP_LOG_PATH

    groups = log_group_names(cfn)
    for env in resources(cfn, "AWS::ElasticBeanstalk::Environment").values():
        options = environment_variables(env)
        assert options["LOG_JSON_PATH"] == APP_LOG_PATH
        assert options["APP_LOG_GROUP"]["Ref"] in groups
    config = (Path(__file__).resolve().parents[2] / ".ebextensions" / "20_metrics.config").read_text()
    assert f'"file_path": "{APP_LOG_PATH}"' in config
    assert '"OptionName": "APP_LOG_GROUP"' in config


def test_sentry_dsn_is_an_optional_secret():
    from aws_cdk import App, Environment, assertions
    from ze_infra.config import stage_config
    from ze_infra.stack import ZeTrackingStack

    arn = "arn:aws:secretsmanager:sa-east-1:123456789012:secret:ze-tracking-dev/sentry-dsn-AbCdEf"
    cfg = stage_config("dev", {"dev.sentry_dsn_secret_arn": arn})
    stack = ZeTrackingStack(App(), "Sentry", cfg=cfg, env=Environment(region=cfg.region))
    cfn = assertions.Template.from_stack(stack).to_json()
    for env in resources(cfn, "AWS::ElasticBeanstalk::Environment").values():
        secrets = {
            o["OptionName"]: o["Value"]
            for o in env["Properties"]["OptionSettings"]
            if o["Namespace"] == "aws:elasticbeanstalk:application:environmentsecrets"
        }
        assert secrets["SENTRY_DSN"] == arn
    assert arn in json.dumps(resources(cfn, "AWS::IAM::Policy"))
    # Without one, nothing names Sentry.
    assert STAGES["dev"].sentry_dsn_secret_arn == ""
