"""Failing fast while Redis or the broker is out, in the web process.

A request that meets a silent dependency waits out its timeout (the cache's REDIS_TIMEOUT_S,
the broker's BROKER_TIMEOUT_S and one retry), then answers 503 with Retry-After. Under load
that is not enough: with a few sync workers, requests that each wait a second queue behind
one another and wait many times that (answers of up to 10 s while the broker hung, in `make
chaos`). So after a failure the process skips the call for BREAKER_OPEN_S and answers 503
at once; the first request after that tries again. Each process learns on its own: the
state lives where the requests wait, and a shared one would need the Redis that is out.
"""

from __future__ import annotations

import logging
import time
from typing import ClassVar

from django.conf import settings

logger = logging.getLogger(__name__)


class Breaker:
    instances: ClassVar[list[Breaker]] = []

    def __init__(self, name: str) -> None:
        self.name = name
        self.open_until = 0.0
        Breaker.instances.append(self)

    def allows(self) -> bool:
        """Whether a call may be tried: no failure within the last BREAKER_OPEN_S."""
        return time.monotonic() >= self.open_until

    def trip(self, error: BaseException) -> None:
        self.open_until = time.monotonic() + settings.BREAKER_OPEN_S
        logger.warning("%s failed (%r): 503 without trying for %s s", self.name, error, settings.BREAKER_OPEN_S)

    def reset(self) -> None:
        self.open_until = 0.0


# The Redis cache, where the throttles count (infra/http/throttles.py).
CACHE = Breaker("the Redis cache")
# The broker, to which the ingest publishes its batches (tracking/services/ingest.py).
BROKER = Breaker("the broker")
