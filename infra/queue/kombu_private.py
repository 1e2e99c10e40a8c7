"""The one module that overrides kombu's internals: its Redis transport (local runs;
production's broker is SQS), whose channel raises a connection error instead of an
AttributeError when a closed connection is asked for its parameters, so a worker that loses
Redis reconnects instead of exiting (docs/internals/broker-reconnect.md). Written against
KOMBU_VERSION: tests/test_private_api_pins.py fails when the installed version differs.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

#: The kombu version this adapter was written and tested against.
KOMBU_VERSION = "5.7.0"


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection was closed; Celery reconnects")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call]
        return params


class Transport(kombu_redis.Transport):
    Channel = Channel
