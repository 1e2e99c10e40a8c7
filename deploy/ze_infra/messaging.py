"""SQS queues for Celery (one per Celery queue, each with a dead-letter queue) and the
SNS topics (consumer notifications, alarms)."""

from __future__ import annotations

from aws_cdk import (
    Duration,
    Stack,
)
from aws_cdk import (
    aws_iam as iam,
)
from aws_cdk import (
    aws_kms as kms,
)
from aws_cdk import (
    aws_sns as sns,
)
from aws_cdk import (
    aws_sns_subscriptions as subs,
)
from aws_cdk import (
    aws_sqs as sqs,
)
from constructs import Construct

from .config import CELERY_QUEUES, LONGEST_TASK_SECONDS, StageConfig

# Five times the longest task: a message a worker holds is invisible to the others for
# this long, so a slow but healthy task is never run twice at once. Celery's
# `broker_transport_options["visibility_timeout"]` must carry the same number.
VISIBILITY_TIMEOUT_SECONDS = 5 * LONGEST_TASK_SECONDS
# A message received this many times without being deleted moves to the DLQ: a worker that
# crashed on it each time (the app writes such a batch to its dead-letter table after
# TASK_MAX_DELIVERIES = 3 deliveries, before this), or a message kombu rejected.
MAX_RECEIVE_COUNT = 5
# How long a message waits for a worker. The app stops retrying a transiently failing batch
# once it is this old (TASK_RETRY_MAX_AGE_S); the DLQ keeps messages longer for operators.
RETENTION_DAYS = 4
DLQ_RETENTION_DAYS = 14
LONG_POLL_SECONDS = 20
# A message's largest body; the web refuses a batch that would not fit (413).
MAX_MESSAGE_BYTES = 256 * 1024


class Messaging(Construct):
    def __init__(self, scope: Construct, id: str, *, cfg: StageConfig, key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        for name in CELERY_QUEUES:
            dlq = sqs.Queue(
                self,
                f"{name.title()}Dlq",
                queue_name=f"{cfg.prefix}-{name}-dlq",
                encryption=sqs.QueueEncryption.KMS,
                encryption_master_key=key,
                data_key_reuse=Duration.hours(1),
                retention_period=Duration.days(DLQ_RETENTION_DAYS),
                enforce_ssl=True,
            )
            queue = sqs.Queue(
                self,
                f"{name.title()}Queue",
                queue_name=f"{cfg.prefix}-{name}",
                encryption=sqs.QueueEncryption.KMS,
                encryption_master_key=key,
                # One data key per hour instead of one KMS call per message batch.
                data_key_reuse=Duration.hours(1),
                visibility_timeout=Duration.seconds(VISIBILITY_TIMEOUT_SECONDS),
                # Pinned (SQS's default has grown): the web's batch guard,
                # TRACKING_MAX_TASK_PAYLOAD_BYTES, is sized to fit this.
                max_message_size_bytes=MAX_MESSAGE_BYTES,
                receive_message_wait_time=Duration.seconds(LONG_POLL_SECONDS),
                retention_period=Duration.days(RETENTION_DAYS),
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=MAX_RECEIVE_COUNT),
                enforce_ssl=True,
            )
            self.queues[name] = queue
            self.dead_letter_queues[name] = dlq

        # The Elastic Beanstalk worker tier runs a daemon (sqsd) that must be given a
        # queue. Celery consumes the queues above itself, so sqsd gets this one, which
        # nothing writes to.
        self.eb_daemon_queue = sqs.Queue(
            self,
            "EbDaemonQueue",
            queue_name=f"{cfg.prefix}-eb-worker-daemon",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
        )

        self.notifications_topic = sns.Topic(
            self,
            "ConsumerNotifications",
            topic_name=f"{cfg.prefix}-consumer-notifications",
            display_name="Ze order status",
            master_key=key,
            enforce_ssl=True,
        )
        self.alarm_topic = sns.Topic(
            self,
            "Alarms",
            topic_name=f"{cfg.prefix}-alarms",
            master_key=key,
            enforce_ssl=True,
        )
        self.alarm_topic.add_subscription(subs.EmailSubscription(cfg.alarm_email))
        # CloudWatch publishes alarm actions to the encrypted topic: only for alarms of this
        # account (a service principal alone would let any account's alarms use the key).
        stack = Stack.of(self)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"},
                },
            )
        )
