from __future__ import annotations

from conftest import resources
from ze_infra.config import CELERY_QUEUES, STAGES


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
