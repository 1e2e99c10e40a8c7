"""The Redis broker transport (ze_tracking/broker.py), against real Redis servers:

- a worker whose Redis crashed closes its broken connection with connection errors only,
  which Celery ignores before it reconnects; any other error ends the worker ("Unrecoverable
  error", seen in `make chaos`);
- one read of the broker delivers as many messages as the prefetch allows, each recorded as
  unacknowledged before it is handled, in two round trips whatever their number.
"""

from __future__ import annotations

import base64
import json

import pytest
import redis
from django.conf import settings
from kombu import Connection, Consumer, Exchange, Queue
from kombu.common import ignore_errors

from tests.test_task_groups import Delivered
from ze_tracking import broker
from ze_tracking.task_groups import requests_acknowledge


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


# --- Fetching several messages per round trip -------------------------------------------


class Consuming:
    """A consumer of queue `q` on the transport the worker uses, with a prefetch limit; it
    notes, as each message reaches it, whether the message was already recorded as
    unacknowledged (a worker killed from then on gets it back)."""

    def __init__(self, own_redis, *, prefetch: int, no_ack: bool = False, fail_on: int | None = None, **options):
        self.redis = own_redis.client()
        self.prefix = options.get("global_keyprefix", "")
        self.connection = Connection(own_redis.url, transport=settings.CELERY_BROKER_TRANSPORT,
                                     transport_options=options)  # fmt: skip
        self.channel = self.connection.channel()
        self.queue = Queue("q", Exchange("q"), "q", channel=self.channel)
        self.queue.declare()
        self.delivered: list = []
        self.fail_on = fail_on
        self.check_recorded = True  # two requests to Redis per message, when on
        self.consumer = Consumer(self.channel, [self.queue], callbacks=[self.on_message], no_ack=no_ack)
        self.consumer.qos(prefetch_count=prefetch)

    def publish(self, count: int, *, first: int = 0, priority: int | None = None) -> None:
        producer = self.connection.Producer(self.channel)
        for n in range(first, first + count):
            producer.publish({"n": n}, exchange="q", routing_key="q", priority=priority)

    def on_message(self, body, message) -> None:
        tag = message.delivery_tag
        recorded = self.check_recorded and (
            self.redis.hexists(f"{self.prefix}unacked", tag)
            and self.redis.zscore(f"{self.prefix}unacked_index", tag) is not None
        )
        self.delivered.append((body["n"], recorded, message))
        if body["n"] == self.fail_on:
            raise RuntimeError("the consumer failed")

    def drain_once(self, timeout: float = 5) -> list[int]:
        """One read of the broker's reply (one BRPOP answered): the messages it delivered."""
        before = len(self.delivered)
        self.consumer.consume()
        try:
            self.connection.drain_events(timeout=timeout)
        except TimeoutError:
            pass
        return [n for n, _, _ in self.delivered[before:]]

    def queued(self) -> list[int]:
        """The numbers of the queue's messages, next one first."""
        raws = reversed(self.redis.lrange(f"{self.prefix}q", 0, -1))
        return [json.loads(base64.b64decode(json.loads(raw)["body"]))["n"] for raw in raws]

    def unacked(self) -> int:
        hash_, index = self.redis.hlen(f"{self.prefix}unacked"), self.redis.zcard(f"{self.prefix}unacked_index")
        assert hash_ == index
        return hash_

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def consuming(own_redis):
    opened = []

    def open_(**kwargs) -> Consuming:
        opened.append(Consuming(own_redis, **kwargs))
        return opened[-1]

    yield open_
    for each in opened:
        ignore_errors(each.connection, each.close)


def test_one_read_delivers_as_many_messages_as_the_prefetch_allows_each_recorded_before_it_is_handled(consuming):
    c = consuming(prefetch=10)
    c.publish(25)

    assert c.drain_once() == list(range(10))

    assert all(recorded for _, recorded, _ in c.delivered)
    assert c.unacked() == 10
    assert c.queued() == list(range(10, 25))  # the rest waits, in order
    assert c.drain_once(timeout=0.5) == []  # nothing more until some are acknowledged


def test_a_fetch_takes_at_most_the_cap_and_a_single_message_when_one_slot_is_free(consuming):
    c = consuming(prefetch=100)
    c.publish(50)

    assert c.drain_once() == list(range(broker.FETCH_MAX))
    for _, _, message in c.delivered[:-1]:
        message.ack()
    c.consumer.qos(prefetch_count=2)  # one slot left
    assert c.drain_once() == [broker.FETCH_MAX]
    assert c.unacked() == 2


def test_messages_fetched_together_and_never_acknowledged_come_back_when_the_channel_closes(consuming):
    c = consuming(prefetch=10)
    c.publish(25)
    assert c.drain_once() == list(range(10))

    c.close()  # kombu restores what its channel holds unacknowledged

    assert c.unacked() == 0
    assert sorted(c.queued()) == list(range(25))


def test_messages_fetched_together_by_a_consumer_that_dies_come_back_after_the_visibility_timeout(consuming):
    c = consuming(prefetch=10, visibility_timeout=1)
    c.publish(25)
    assert c.drain_once() == list(range(10))
    c.channel.qos.restore_at_shutdown = False  # killed: it restores nothing

    heir = consuming(prefetch=10, visibility_timeout=0)
    heir.channel.qos.restore_visible(num=100, interval=1)

    assert heir.unacked() == 0
    assert sorted(heir.queued()) == list(range(25))


def test_acknowledging_messages_fetched_together_removes_them_from_the_unacknowledged(consuming):
    c = consuming(prefetch=10)
    c.publish(10)
    c.drain_once()
    messages = [message for _, _, message in c.delivered]

    messages[0].ack()
    requests_acknowledge(requests=[Delivered(message) for message in messages[1:]])

    assert c.unacked() == 0
    assert c.channel.qos.can_consume_max_estimate() == 10
    c.close()
    assert c.queued() == []  # nothing to restore


def test_a_fetch_costs_a_fraction_of_a_round_trip_per_message(consuming, monkeypatch):
    c = consuming(prefetch=2 * broker.FETCH_MAX)
    c.publish(2 * broker.FETCH_MAX)
    c.drain_once()  # connected, the script loaded: what follows is the steady state
    for _, _, message in c.delivered:
        message.ack()
    c.consumer.qos(prefetch_count=2 * broker.FETCH_MAX)
    c.check_recorded = False
    requests = []
    send = redis.connection.AbstractConnection.send_packed_command
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command",
                        lambda *a, **k: requests.append(1) or send(*a, **k))  # fmt: skip

    while len(c.delivered) < 2 * broker.FETCH_MAX and c.drain_once():
        pass

    assert len(c.delivered) == 2 * broker.FETCH_MAX
    # BRPOP, then one script call for the message BRPOP returned and those fetched with it.
    # kombu's transport alone: two per message (BRPOP, then a pipeline to record it).
    assert len(requests) == 2


def test_a_fetch_takes_from_the_priority_the_first_message_came_from(consuming):
    c = consuming(prefetch=10)
    c.publish(3, priority=9)
    c.publish(3, first=3, priority=0)

    assert c.drain_once() == [3, 4, 5]  # kombu serves priority 0 first
    assert c.drain_once() == [0, 1, 2]
    assert c.unacked() == 6


def test_a_fetch_honours_the_global_key_prefix(consuming):
    c = consuming(prefetch=10, global_keyprefix="ze:")
    c.publish(15)

    assert c.drain_once() == list(range(10))
    assert all(recorded for _, recorded, _ in c.delivered)
    assert not c.redis.exists("unacked", "unacked_index")
    c.close()
    assert c.unacked() == 0 and sorted(c.queued()) == list(range(15))


def test_a_consumer_without_acknowledgements_gets_one_message_per_read_and_nothing_recorded(consuming):
    c = consuming(prefetch=10, no_ack=True)
    c.publish(5)

    assert c.drain_once() == [0]
    assert c.unacked() == 0


def test_when_the_fetch_script_is_refused_the_message_already_popped_is_delivered_and_the_rest_stay_queued(
    consuming, own_redis
):
    own_redis.client().acl_setuser("default", enabled=True, nopass=True, categories=["-@scripting"])
    c = consuming(prefetch=10)
    c.publish(5)

    assert c.drain_once() == [0]

    assert c.delivered[0][1]  # recorded by kombu's own pipeline
    assert c.unacked() == 1
    assert c.queued() == [1, 2, 3, 4]


def test_messages_fetched_behind_one_whose_handling_failed_go_back_to_the_head_of_the_queue(consuming):
    c = consuming(prefetch=10, fail_on=2)
    c.publish(15)

    with pytest.raises(RuntimeError):
        c.drain_once()

    assert [n for n, _, _ in c.delivered] == [0, 1, 2]
    assert c.unacked() == 3  # the three delivered: kombu holds them until acknowledged
    assert c.queued() == list(range(3, 15))
