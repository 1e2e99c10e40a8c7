"""Failing fast while Redis or the broker is out, in the web process: after a failure the
process answers 503 at once for BREAKER_OPEN_S instead of waiting out the timeout again;
the first request after that tries again. Each process learns on its own. Why:
docs/internals/breakers.md.
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
