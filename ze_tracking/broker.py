"""Celery's Redis broker transport (local runs; production's broker is SQS, which already
receives up to 10 messages per call), with two changes.

**Several messages per fetch.** kombu's transport takes one message per BRPOP, then records it
as unacknowledged with a pipeline of its own: two round trips per message, most of a worker
main process's CPU on a deep queue. Here, when BRPOP returns a message, one script call
(FETCH) records it and takes up to FETCH_MAX - 1 more from the same list, as many as the
prefetch limit still allows, recording each exactly as kombu does (the message's delivery tag
in the index `unacked_index`, scored with the time, and `[message, exchange, routing key]` in
the hash `unacked`): two round trips for up to FETCH_MAX messages. The messages are then
delivered in their queue order, and the QoS skips the pipeline of those already recorded.

- A message the script takes is recorded in the same atomic step: a worker killed at any
  moment leaves it either on its list or recorded, and then it comes back after the
  visibility timeout. The message BRPOP returned is taken before it is recorded, as in
  kombu: a worker killed between BRPOP's reply and the script loses that one message.
- The script reads only the list BRPOP answered from (the exact key: queue and priority).
  BRPOP still rotates over the queues, so a deep queue does not starve the others; a message
  of a higher priority that arrives meanwhile waits for the next fetch, as it would behind
  prefetched messages.
- A refused script (an error reply) has taken nothing: the message BRPOP returned is
  delivered kombu's way. A connection lost during the call leaves the other messages queued
  (the script did not run) or recorded (it ran): they come back after the visibility timeout.
- A message whose handling raises leaves the ones fetched behind it undelivered: they go back
  to the head of their list, unrecorded, as they were.
- Needs Redis 6.2 or later (RPOP with a count). Consumers without acknowledgements
  (`no_ack`) and channels without ack emulation keep kombu's one message per BRPOP.

**Reconnecting.** A worker that loses Redis reconnects instead of exiting. When the connection
drops, Celery first collects the broken connection, which detaches the transport from its
client, then closes it. A channel that the first pass could not close (its pending BRPOP read
failed) is closed again in the second and, to give back its unacknowledged messages, asks the
detached transport for a new connection. kombu then fails with AttributeError ("'NoneType'
object has no attribute 'hostname'"), which is no connection error, so it ends the worker
("Unrecoverable error"). Here it is a connection error: the close gives up, Celery
reconnects, and the messages come back with the visibility timeout, as after any lost
connection.
"""

from __future__ import annotations

import logging
from functools import cached_property
from queue import Empty
from time import time

from kombu.transport import redis as kombu_redis
from kombu.transport.virtual.base import QoS as VirtualQoS
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)

#: Most messages one fetch delivers (the one BRPOP returned included).
FETCH_MAX = 32

# KEYS: the list BRPOP answered from, kombu's unacknowledged index and hash.
# ARGV: the time (kombu's score), how many more messages to take, the message BRPOP returned.
# Replies 1 or 0 (recorded or not) for that message, then each message taken and its flag.
# A message is stored in the hash verbatim, between the brackets of the JSON list kombu
# writes. One that cannot be read (no delivery tag) is left unrecorded and goes kombu's way;
# nothing after the RPOP may fail, since a script's writes stay when it stops on an error.
FETCH = """
local function record(raw)
  local ok, message = pcall(cjson.decode, raw)
  if not ok or type(message) ~= 'table' or type(message.properties) ~= 'table' then
    return 0
  end
  local tag, info = message.properties.delivery_tag, message.properties.delivery_info
  if type(tag) ~= 'string' or type(info) ~= 'table'
      or type(info.exchange) ~= 'string' or type(info.routing_key) ~= 'string' then
    return 0
  end
  redis.call('ZADD', KEYS[2], ARGV[1], tag)
  redis.call('HSET', KEYS[3], tag,
    '[' .. raw .. ',' .. cjson.encode(info.exchange) .. ',' .. cjson.encode(info.routing_key) .. ']')
  return 1
end

local replies = {record(ARGV[3])}
local more = tonumber(ARGV[2])
if more > 0 then
  local taken = redis.call('RPOP', KEYS[1], more)
  if taken then
    for _, raw in ipairs(taken) do
      replies[#replies + 1] = raw
      replies[#replies + 1] = record(raw)
    end
  end
end
return replies
"""


class QoS(kombu_redis.QoS):
    #: The delivery tag of the message being delivered, when FETCH recorded it already.
    recorded_tag: str | None = None

    def append(self, message, delivery_tag) -> None:
        if delivery_tag is not None and delivery_tag == self.recorded_tag:
            self.recorded_tag = None
            VirtualQoS.append(self, message, delivery_tag)  # the bookkeeping in memory only
        else:
            super().append(message, delivery_tag)


class Channel(kombu_redis.Channel):
    QoS = QoS

    def __init__(self, *args, **kwargs) -> None:
        self._acknowledged_queues: set[str] = set()
        self._fetch_refused_logged = False
        super().__init__(*args, **kwargs)

    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection was closed; Celery reconnects")
        return super()._connparams(asynchronous=asynchronous)

    def basic_consume(self, queue, no_ack, *args, **kwargs):
        if no_ack:
            self._acknowledged_queues.discard(queue)
        else:
            self._acknowledged_queues.add(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    @cached_property
    def _fetch(self):
        return self.client.register_script(FETCH)

    def _brpop_read(self, **options):
        """kombu's (5.7), but the message goes to `_fetch_deliver` with the exact key it came from."""
        try:
            try:
                key__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                # The next poll reconnects.
                self.client.connection.disconnect()
                raise
            if not key__item:
                raise Empty()
            key, item = bytes_to_str(key__item[0]), key__item[1]
            queue = key.rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(queue)
            self._fetch_deliver(key=key, queue=queue, first=item)
            return True
        finally:
            self._in_poll = None
            # The BRPOP connection is idle: kombu sends a pending re-authentication now.
            self._flush_brpop_reauth()

    def _fetch_deliver(self, *, key: str, queue: str, first: bytes) -> None:
        """Deliver the message BRPOP returned from `key` and those fetched with it. Steps:
        1. how many more the prefetch limit allows (none for a consumer without acks);
        2. FETCH records the first message and takes and records the others;
        3. each message is delivered in order; if one's handling raises, those behind it
           go back to the head of the list."""
        if not self.ack_emulation or queue not in self._acknowledged_queues:
            self.connection._deliver(loads(bytes_to_str(first)), queue)
            return
        room = self.qos.can_consume_max_estimate()
        more = FETCH_MAX - 1 if room is None else max(min(room, FETCH_MAX) - 1, 0)
        prefix = self.global_keyprefix  # the prefixing client prefixes only the first key
        try:
            replies = self._fetch(
                keys=[key, prefix + self.unacked_index_key, prefix + self.unacked_key],
                args=[repr(time()), more, first],
                client=self.client,
            )
        except (*self.connection_errors, self.ResponseError) as exc:
            if isinstance(exc, self.ResponseError) and not self._fetch_refused_logged:
                self._fetch_refused_logged = True
                logger.warning("Redis refused the fetch script (%s); one message per BRPOP", exc)
            self.connection._deliver(loads(bytes_to_str(first)), queue)
            return
        fetched = [(first, replies[0]), *zip(replies[1::2], replies[2::2], strict=True)]
        for index, (raw, recorded) in enumerate(fetched):
            try:
                message = loads(bytes_to_str(raw))
                if recorded:
                    self.qos.recorded_tag = message["properties"]["delivery_tag"]
                self.connection._deliver(message, queue)
            except BaseException:
                self._fetched_requeue(key=key, fetched=fetched[index + 1 :])
                raise
            finally:
                self.qos.recorded_tag = None

    def _fetched_requeue(self, *, key: str, fetched: list) -> None:
        """Put undelivered fetched messages back at the head of their list, in order, and out
        of the unacknowledged ones, in one transaction. If Redis fails here they stay
        recorded and come back after the visibility timeout."""
        if not fetched:
            return
        try:
            with self.qos.pipe_or_acquire() as pipe:
                for raw, recorded in reversed(fetched):
                    pipe.rpush(key, raw)
                    if recorded:
                        tag = loads(bytes_to_str(raw))["properties"]["delivery_tag"]
                        pipe.zrem(self.unacked_index_key, tag).hdel(self.unacked_key, tag)
                pipe.execute()
        except Exception:
            logger.exception("could not requeue %d fetched messages; they come back after the visibility timeout",
                             len(fetched))  # fmt: skip


class Transport(kombu_redis.Transport):
    Channel = Channel
