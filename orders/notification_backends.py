"""Where a consumer notification leaves the process: SNS (production), a signed webhook
(partners) or the log (local runs). Chosen by NOTIFICATIONS_BACKEND.

Every backend returns the provider's message id and raises `DeliveryFailed` when the
provider did not take the message; retrying is the caller's business.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from functools import lru_cache

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Ze-Signature"
TIMESTAMP_HEADER = "X-Ze-Timestamp"


class DeliveryFailed(Exception):
    """The provider did not take the message (outage, timeout, 4xx/5xx)."""


@dataclass(frozen=True)
class NotificationMessage:
    notification_id: int
    order_id: str
    kind: str
    subject: str
    text: str
    tracking_url: str


class LogBackend:
    def send(self, message: NotificationMessage) -> str:
        logger.info("notification %s %s for order %s: %s", message.notification_id, message.kind, message.order_id,
                    message.text)  # fmt: skip
        return f"log-{message.notification_id}"


_sns_lock = threading.Lock()


@lru_cache(maxsize=4)
def _sns_client(*, region: str, endpoint_url: str | None):
    # Building a client costs tens of milliseconds; a client is thread-safe once built, but
    # the default session that builds it is not, hence the lock and the cache.
    with _sns_lock:
        return boto3.session.Session().client(
            "sns",
            region_name=region,
            endpoint_url=endpoint_url,
            # Short timeouts and one botocore retry: the Celery task owns the retry policy.
            config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"}),
        )


def sns_client_warm() -> None:
    """Build the client before the first message (a worker's first notification would
    otherwise wait for it)."""
    _sns_client(region=settings.AWS_REGION, endpoint_url=settings.AWS_ENDPOINT_URL_SNS)


class SnsBackend:
    """Publishes to one topic. `order_id` and `kind` travel as message attributes, so push,
    SMS or e-mail subscribers can filter with a subscription filter policy.
    https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html"""

    def send(self, message: NotificationMessage) -> str:
        client = _sns_client(region=settings.AWS_REGION, endpoint_url=settings.AWS_ENDPOINT_URL_SNS)
        try:
            response = client.publish(
                TopicArn=settings.NOTIFICATIONS_SNS_TOPIC_ARN,
                Subject=message.subject,
                Message=message.text,
                MessageAttributes={
                    "order_id": {"DataType": "String", "StringValue": message.order_id},
                    "kind": {"DataType": "String", "StringValue": message.kind},
                },
            )
        except (BotoCoreError, ClientError) as exc:
            raise DeliveryFailed(f"SNS publish failed: {exc}") from exc
        return response["MessageId"]


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over `timestamp.body`: the timestamp is signed too, so a receiver that
    rejects old timestamps is safe from replays."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookBackend:
    def send(self, message: NotificationMessage) -> str:
        body = json.dumps(asdict(message), separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: webhook_signature(
                secret=settings.NOTIFICATIONS_WEBHOOK_SECRET, timestamp=timestamp, body=body
            ),
            # Lets the receiver drop a message it already took (we deliver at least once).
            "Idempotency-Key": f"{message.order_id}:{message.kind}",
        }
        try:
            response = requests.post(settings.NOTIFICATIONS_WEBHOOK_URL, data=body, headers=headers, timeout=(2, 5))
        except requests.RequestException as exc:
            raise DeliveryFailed(f"webhook request failed: {exc}") from exc
        if response.status_code >= 300:
            raise DeliveryFailed(f"webhook answered {response.status_code}: {response.text[:200]}")
        return response.headers.get("X-Message-Id", "")


BACKENDS = {"log": LogBackend, "sns": SnsBackend, "webhook": WebhookBackend}


def notification_backend_get():
    return BACKENDS[settings.NOTIFICATIONS_BACKEND]()
