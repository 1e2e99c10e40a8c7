"""The acknowledgement of a group's messages, against the real Redis broker."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from kombu import Connection

from ze_tracking.task_groups import requests_acknowledge


class Delivered:
    """What the worker's requests offer the acknowledgement: the message and its state."""

    def __init__(self, message) -> None:
        self.message = message
        self.acknowledged = False

    def acknowledge(self) -> None:
        self.message.ack()
        self.acknowledged = True


@pytest.mark.real_broker
def test_a_groups_messages_are_acknowledged_in_one_round_trip(monkeypatch):
    url = settings.REDIS_URL.rsplit("/", 1)[0] + "/12"
    client = redis.Redis.from_url(url)
    client.flushdb()
    with Connection(url) as connection:
        queue = connection.SimpleQueue("group-acks")
        for n in range(3):
            queue.put({"n": n})
        delivered = [Delivered(queue.get(timeout=5)) for _ in range(3)]
        assert client.hlen("unacked") == 3
        # Count the pipelines the transport's clients send (each is one round trip).
        client_class, pipelines = type(queue.channel.client), []
        pipeline = client_class.pipeline
        monkeypatch.setattr(client_class, "pipeline", lambda *a, **k: pipelines.append(1) or pipeline(*a, **k))

        requests_acknowledge(requests=delivered)

        assert len(pipelines) == 1  # not one per message
        assert client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0
        assert all(d.acknowledged and d.message.acknowledged for d in delivered)
        queue.close()
    client.flushdb()
