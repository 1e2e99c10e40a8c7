"""AWS through boto3 against moto's server: SNS for consumer notifications, SQS as the
production broker."""

from __future__ import annotations

import json
import logging
import os
import uuid

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from tests.support.database import database_url
from tests.support.network import free_port
from tests.support.waiting import wait_for

AWS_TEST_ENV = {"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class SnsEmulator:
    """moto's server (in this process, on its own thread and port) with one topic and an SQS
    queue subscribed to it (raw delivery off, so each SQS message is SNS's envelope with the
    message attributes). `stop` closes the port, so every publish fails as in an outage;
    `start` opens it again on the same port with the same topic and subscription, as SNS
    itself comes back."""

    TOPIC = "ze-order-notifications"
    QUEUE = "ze-order-notifications-test"

    def __init__(self, port: int):
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.server: ThreadedMotoServer | None = None
        self.topic_arn = ""

    @property
    def running(self) -> bool:
        return self.server is not None

    def client(self, service: str):
        return boto3.session.Session().client(
            service, region_name="us-east-1", endpoint_url=self.endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

        def answers():
            try:
                return requests.get(f"{self.endpoint}/moto-api/", timeout=0.5).status_code < 500
            except requests.RequestException:
                return False

        wait_for(answers, timeout=30, message="the SNS emulator to answer")
        if not self.topic_arn:
            self.topic_arn = self.client("sns").create_topic(Name=self.TOPIC)["TopicArn"]
            sqs = self.client("sqs")
            self.queue_url = sqs.create_queue(QueueName=self.QUEUE)["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            self.client("sns").subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def stop(self) -> None:
        self.server.stop()
        self.server._server.server_close()  # free the port: connections are refused, not queued
        self.server = None

    def received(self) -> list[dict]:
        """Drain the subscribed queue: each item is SNS's envelope (Message, MessageAttributes)."""
        sqs = self.client("sqs")
        messages = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture(scope="session")
def sns_emulator():
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per emulated request
    emulator = SnsEmulator(free_port())
    emulator.start()
    yield emulator
    if emulator.running:
        emulator.stop()


@pytest.fixture
def sns(sns_emulator):
    """The emulator, running, with an empty queue."""
    if not sns_emulator.running:
        sns_emulator.start()
    sns_emulator.received()
    return sns_emulator


@pytest.fixture
def sqs_env(sns_emulator):
    """The environment deploy/ gives the app: sqs:// broker and one URL per Celery queue."""
    if not sns_emulator.running:
        sns_emulator.start()
    sqs = sns_emulator.client("sqs")
    suffix = uuid.uuid4().hex[:6]
    env = {
        **os.environ,
        **AWS_TEST_ENV,
        "DATABASE_URL": database_url(),
        "DB_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": f"sqs://testing:testing@127.0.0.1:{sns_emulator.port}",
        "SQS_IS_SECURE": "0",
    }
    for name in ("pings", "notifications", "maintenance"):
        url = sqs.create_queue(QueueName=f"ze-tracking-test-{name}-{suffix}")["QueueUrl"]
        env[f"SQS_{name.upper()}_QUEUE_URL"] = url
    return env
