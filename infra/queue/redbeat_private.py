"""Celery beat's scheduler: celery-redbeat's (the schedule and a single-beat lock in Redis),
made to outlive its Redis: a tick that cannot reach it is skipped, and a lost lock is taken
again when free (docs/internals/beat-scheduler.md). The one module that uses redbeat's
internals and redis-py's lock internals, written against REDBEAT_VERSION and REDIS_VERSION:
tests/test_private_api_pins.py fails when an installed version differs.
"""

from __future__ import annotations

from typing import Any

import redis
from celery.utils.log import get_logger
from redbeat.schedulers import LUA_EXTEND_TO_SCRIPT, RedBeatConfig, RedBeatScheduler, get_redis

#: The versions this adapter was written and tested against.
REDBEAT_VERSION = "2.4.2"
REDIS_VERSION = "8.1.0"

logger = get_logger("celery.beat")


# redbeat ships no types: its classes are Any to mypy.
class Config(RedBeatConfig):  # type: ignore[misc]
    """redbeat's settings, read from Celery's CELERY_ namespace. redbeat asks whether a
    setting is given by looking for its bare name among the configuration's keys, which
    lists CELERY_REDBEAT_REDIS_OPTIONS under that name only: it would then warn that
    CELERY_REDBEAT_REDIS_URL is missing, and not pass the options to its Redis client."""

    def is_key_in_conf(self, name: str) -> bool:
        return name in self.app.conf


class Scheduler(RedBeatScheduler):  # type: ignore[misc]
    # False until the static schedule is in Redis, and again whenever the lock is taken
    # again: a Redis that lost the lock may have lost the schedule with it.
    schedule_installed = False
    # Set by redbeat's scheduler, described here for the type checker.
    max_interval: float
    lock: redis.lock.Lock | None
    lock_key: str | None
    lock_timeout: float

    def __init__(self, app: Any, **kwargs: Any) -> None:
        app.redbeat_conf = Config(app)  # before redbeat builds its own
        super().__init__(app, **kwargs)

    def setup_schedule(self) -> None:
        """redbeat's, which also runs at start-up: a Redis that cannot be reached then is
        tried again at each tick instead of ending the process."""
        try:
            super().setup_schedule()
        except redis.RedisError as exc:
            logger.warning("beat: Redis failed while installing the schedule: %r", exc)
            self.schedule_installed = False
        else:
            self.schedule_installed = True

    def tick(self, min: Any = min, **kwargs: Any) -> float:
        """Steps: hold the lock (renew it, or take it again if it is free), else stand by;
        install the schedule if it is missing; send the due entries, as redbeat does. A
        Redis failure ends the tick; the next one comes `max_interval` later."""
        try:
            if self.lock_key and not self._lock_hold():
                return self.max_interval
            if not self.schedule_installed:
                self.setup_schedule()
            remaining_times = []
            for entry in self.schedule.values():
                next_time_to_run = self.maybe_due(entry, **self._maybe_due_kwargs)
                if next_time_to_run:
                    remaining_times.append(next_time_to_run)
        except redis.RedisError as exc:
            logger.warning("beat: Redis failed: %r; next try in %s s", exc, self.max_interval)
            return self.max_interval
        soonest: float = min([*remaining_times, self.max_interval])
        return soonest

    def _lock_hold(self) -> bool:
        """Whether this beat holds the lock now. redbeat takes it once, at start-up (waiting
        while another beat holds it) and leaves `lock` None when Redis failed then."""
        if self.lock is None:
            self.lock = self._lock_build()
        if self.lock.local.token is not None:
            logger.debug("beat: Extending lock...")
            try:
                self.lock.extend(int(self.lock_timeout))
                return True
            except redis.exceptions.LockNotOwnedError:
                logger.warning("beat: Lost the lock (it expired, or Redis lost it)")
                self.lock.local.token = None
        if not self.lock.acquire(blocking=False):
            logger.info("beat: Another beat holds the lock; standing by")
            return False
        logger.info("beat: Acquired lock")
        self.schedule_installed = False
        return True

    def _lock_build(self) -> redis.lock.Lock:
        """The lock as redbeat builds it at start-up, whose extend sets the expiry anew
        rather than adding to it."""
        client = get_redis(self.app)
        lock: redis.lock.Lock = client.lock(self.lock_key, timeout=self.lock_timeout, sleep=self.max_interval)
        lock.lua_extend = client.register_script(LUA_EXTEND_TO_SCRIPT)
        return lock

    def close(self) -> None:
        """redbeat's release of the lock, which an unreachable Redis must not turn into a
        failed exit: the lock then expires on its own."""
        try:
            super().close()
        except redis.RedisError as exc:
            logger.warning("beat: Could not release the lock: %r", exc)
