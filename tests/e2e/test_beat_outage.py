"""Beat outlives its Redis: a real `celery beat` against a Redis of its own (no persistence,
like the checkout's), which hangs, crashes and comes back empty, or whose lock another beat
takes. Beat stays up, stands by while the lock is not its own, takes it again when it is
free, and schedules again."""

from __future__ import annotations

import uuid

import pytest
import redis

from tests.support.processes import celery_beat_start
from tests.support.waiting import wait_for

# Long enough for a tick (CELERY_BEAT_MAX_LOOP_INTERVAL, 5 s) that waits out its Redis
# timeouts; short enough that a beat hanging on a silent Redis fails the test.
TICK_WITHIN_S = 20
SENT = "Sending due task beat-heartbeat"
UNREACHABLE = "beat: Redis failed"


@pytest.fixture
def beat(own_redis):
    """A beat on `own_redis`, which has taken the lock and sent an entry made due; yields
    (process, log reader, key prefix)."""
    prefix = f"redbeat-outage-{uuid.uuid4().hex[:8]}"
    process, log = celery_beat_start(
        name=f"outage-{prefix}", prefix=prefix, env={"REDIS_URL": own_redis.url, "CELERY_BROKER_URL": own_redis.url}
    )
    try:
        wait_for(lambda: "beat: Acquired lock" in log(), timeout=60, message="beat to take the lock")
        heartbeat_make_due(r=own_redis.client(), prefix=prefix)
        wait_for(lambda: SENT in log(), timeout=TICK_WITHIN_S, message="beat to send the due entry")
        yield process, log, prefix
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def heartbeat_make_due(*, r: redis.Redis, prefix: str) -> None:
    """As if the heartbeat entry had never run: whoever holds the lock sends it at its next
    tick (installed entries count from their install, so none is due at once)."""
    key = f"{prefix}beat-heartbeat"
    wait_for(lambda: r.zscore(f"{prefix}:schedule", key) is not None, timeout=TICK_WITHIN_S, message="the schedule")
    r.hdel(key, "meta")
    r.zadd(f"{prefix}:schedule", {key: 0})


def after(log, mark: int) -> str:
    return log()[mark:]


def test_beat_outlives_a_silent_redis_and_a_crash_that_empties_it(own_redis, beat):
    process, log, prefix = beat
    lock_key = f"{prefix}:lock"
    holder = own_redis.client().get(lock_key)

    # Silent: connections hang. Beat's Redis calls give up and it tries again later.
    mark = len(log())
    own_redis.freeze()
    try:
        wait_for(lambda: UNREACHABLE in after(log, mark), timeout=TICK_WITHIN_S, message="beat to give up on Redis")
    finally:
        own_redis.thaw()
    mark = len(log())
    wait_for(lambda: "beat: Extending lock" in after(log, mark), timeout=TICK_WITHIN_S, message="beat to renew")
    assert process.poll() is None
    assert own_redis.client().get(lock_key) == holder

    # Crashed and back without its data: no lock, no schedule. Beat takes the lock again,
    # installs the schedule again and sends what is due.
    mark = len(log())
    own_redis.crash()
    wait_for(lambda: UNREACHABLE in after(log, mark) or process.poll() is not None, timeout=TICK_WITHIN_S)
    assert process.poll() is None, after(log, mark)[-2000:]
    own_redis.start()
    mark = len(log())
    wait_for(lambda: "beat: Acquired lock" in after(log, mark), timeout=TICK_WITHIN_S, message="beat to retake it")
    heartbeat_make_due(r=own_redis.client(), prefix=prefix)
    wait_for(lambda: SENT in after(log, mark), timeout=TICK_WITHIN_S, message="beat to schedule again")
    assert own_redis.client().get(lock_key) not in (None, holder)
    assert process.poll() is None


def test_beat_stands_by_while_another_beat_holds_its_lost_lock(own_redis, beat):
    process, log, prefix = beat
    lock_key = f"{prefix}:lock"
    r = own_redis.client()
    # The lock expired during an outage and another beat took it.
    r.set(lock_key, "another-beat", px=60_000)
    standby = "beat: Another beat holds the lock"
    mark = len(log())
    wait_for(lambda: standby in after(log, mark) or process.poll() is not None, timeout=TICK_WITHIN_S)
    assert process.poll() is None, after(log, mark)[-2000:]

    # Something is due, but this beat does not send it while it stands by.
    mark = len(log())
    heartbeat_make_due(r=r, prefix=prefix)
    wait_for(lambda: after(log, mark).count(standby) >= 2, timeout=2 * TICK_WITHIN_S, message="two ticks")
    assert SENT not in after(log, mark)
    assert r.get(lock_key) == "another-beat"

    # The other beat stops and its lock is gone: this one takes it and sends the due entry.
    r.delete(lock_key)
    wait_for(lambda: "beat: Acquired lock" in after(log, mark), timeout=TICK_WITHIN_S, message="beat to take it")
    wait_for(lambda: SENT in after(log, mark), timeout=TICK_WITHIN_S, message="the due entry to be sent")
    assert r.get(lock_key) not in (None, "another-beat")
    assert process.poll() is None
