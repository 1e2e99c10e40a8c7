"""The Redis broker transport (infra/queue/kombu_private.py), against a real Redis server: a worker
whose Redis crashed closes its broken connection with connection errors only, which Celery
ignores before it reconnects; any other error ends the worker ("Unrecoverable error", seen
in `make chaos`)."""

from __future__ import annotations

from django.conf import settings
from kombu import Connection, Exchange, Queue
from kombu.common import ignore_errors


def test_a_worker_connection_to_a_crashed_redis_closes_without_ending_the_worker(own_redis):
    connection = Connection(own_redis.url, transport=settings.CELERY_BROKER_TRANSPORT)
    # Two consuming channels, each waiting on a BRPOP, one holding an unacknowledged message.
    channels = [connection.default_channel, connection.channel()]
    for index, channel in enumerate(channels):
        name = f"q{index}"
        Queue(name, Exchange(name), name, channel=channel).declare()
        connection.Producer(channel).publish({"n": index}, exchange=name, routing_key=name)
        assert channel.basic_get(name, no_ack=False)
        channel.basic_consume(name, False, lambda message: None, f"tag-{index}")
        connection.transport.cycle._register_BRPOP(channel)

    own_redis.crash()
    # What Celery's consumer does on a lost connection (on_connection_error_after_connected):
    # collect the connection, ignoring anything, then close it, ignoring connection errors.
    try:
        try:
            connection.collect(socket_timeout=1)
        except Exception:  # noqa: BLE001, S110 (Celery ignores it too)
            pass
        ignore_errors(connection, connection.close)
    finally:
        for channel in channels:  # no second try when this process exits
            channel.qos.restore_at_shutdown = False
