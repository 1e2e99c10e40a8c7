"""kombu's Redis broker transport (local runs; production's broker is SQS), with one fix that
keeps a worker alive when Redis restarts. Written against kombu 5.7.0:
tests/test_broker.py fails when the pinned version changes, to have it checked again.

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

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

#: The kombu version this adapter was written and tested against.
KOMBU_VERSION = "5.7.0"


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection was closed; Celery reconnects")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
