from __future__ import annotations

from aws_cdk import assertions
from conftest import resources
from ze_infra.config import CELERY_QUEUES, LONGEST_TASK_SECONDS, STAGES


def _queues(cfn: dict) -> dict[str, dict]:
    return {q["Properties"]["QueueName"]: q["Properties"] for q in resources(cfn, "AWS::SQS::Queue").values()}


def test_each_celery_queue_exists_under_its_celery_name(cfn, stage):
    prefix = STAGES[stage].prefix
    names = set(_queues(cfn))
    for name in CELERY_QUEUES:
        assert f"{prefix}-{name}" in names
        assert f"{prefix}-{name}-dlq" in names


def test_each_celery_queue_redrives_to_its_dead_letter_queue(cfn, stage):
    prefix = STAGES[stage].prefix
    logical = {v["Properties"]["QueueName"]: k for k, v in resources(cfn, "AWS::SQS::Queue").items()}
    queues = _queues(cfn)
    for name in CELERY_QUEUES:
        redrive = queues[f"{prefix}-{name}"]["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [logical[f"{prefix}-{name}-dlq"], "Arn"]}
        assert redrive["maxReceiveCount"] == 5


def test_queues_are_encrypted_long_polled_and_outlast_the_longest_task(cfn, stage):
    prefix = STAGES[stage].prefix
    for name, queue in _queues(cfn).items():
        assert "KmsMasterKeyId" in queue, name
        if name in {f"{prefix}-{q}" for q in CELERY_QUEUES}:
            assert queue["ReceiveMessageWaitTimeSeconds"] == 20
            assert queue["VisibilityTimeout"] > LONGEST_TASK_SECONDS


def test_each_celery_queue_takes_messages_of_the_size_the_web_guards(cfn, stage):
    # ze_tracking/settings/tracking.py TRACKING["MAX_TASK_PAYLOAD_BYTES"] is sized for 256 KiB, and
    # tests/e2e/test_sqs_broker.py publishes the largest batch it accepts to such a queue.
    prefix = STAGES[stage].prefix
    queues = _queues(cfn)
    for name in CELERY_QUEUES:
        assert queues[f"{prefix}-{name}"]["MaximumMessageSize"] == 262_144


def test_queues_refuse_plain_http(template):
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": assertions.Match.array_with(
                    [
                        assertions.Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            }
        },
    )


def test_topics_are_encrypted(cfn, stage):
    topics = {t["Properties"]["TopicName"]: t["Properties"] for t in resources(cfn, "AWS::SNS::Topic").values()}
    prefix = STAGES[stage].prefix
    assert set(topics) == {f"{prefix}-consumer-notifications", f"{prefix}-alarms"}
    assert all("KmsMasterKeyId" in t for t in topics.values())


def test_the_app_is_told_the_queues_visibility_timeout_and_retention(cfn, stage):
    """Celery's retry delays are checked against the visibility timeout the app is given,
    and its retries stop at the queue's retention: both must be the queues' own numbers."""
    prefix = STAGES[stage].prefix
    pings = _queues(cfn)[f"{prefix}-pings"]
    for env in resources(cfn, "AWS::ElasticBeanstalk::Environment").values():
        options = {o["OptionName"]: o["Value"] for o in env["Properties"]["OptionSettings"]}
        assert int(options["CELERY_VISIBILITY_TIMEOUT"]) == pings["VisibilityTimeout"]
        assert int(options["TASK_RETRY_MAX_AGE_S"]) == pings["MessageRetentionPeriod"]
    assert _queues(cfn)[f"{prefix}-pings-dlq"]["MessageRetentionPeriod"] > pings["MessageRetentionPeriod"]
