"""Fixtures every test shares: the `processes` mark, the isolation between tests and the
people every endpoint is tested against. The harness itself lives in tests/support/; the
browser and the live server in tests/e2e/conftest.py."""

from __future__ import annotations

import datetime as dt
import sys

import pytest
import redis
from channels.layers import channel_layers
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from infra.http.breakers import Breaker
from tests.support.api import client_for
from tests.support.builders import CourierFactory, OrderFactory, UserFactory

pytest_plugins = ["tests.support.network", "tests.support.aws", "tests.support.processes"]

# --- The `processes` mark: tests that start a real process or server ---------------------

# A test using one of these, directly or through another fixture, starts a process (a Celery
# worker, redis-server, uvicorn, Chromium) or moto's server. A test that starts one itself
# carries the mark (or its module's `pytestmark`).
PROCESS_FIXTURES = {
    "celery_worker_process", "spawn_celery_worker", "own_redis", "sns_emulator", "asgi_server", "browser",
}  # fmt: skip


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items):
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.processes)


_started: list[str] | None = None  # what the running unmarked test started


def _process_started(event: str, args: tuple) -> None:
    if _started is not None and event in ("subprocess.Popen", "os.posix_spawn", "os.fork"):
        _started.append(f"{event} {args[0] if args else ''}")


sys.addaudithook(_process_started)


@pytest.fixture(autouse=True)
def _processes_marked(request):
    """A test that starts a process without the `processes` mark fails, so that
    `-m "not processes"` runs none."""
    global _started
    if request.node.get_closest_marker("processes"):
        yield
        return
    _started = []
    yield
    started, _started = _started, None
    if started:
        pytest.fail(f"started a process without @pytest.mark.processes: {started}", pytrace=False)


# --- Isolation between tests -------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _clean_broker():
    """Drop messages a previous, interrupted run may have left in the test Redis db."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture(autouse=True)
def _clean_throttles():
    """Rate-limit counters live in Redis and would otherwise carry over between tests."""
    cache.delete_pattern("throttle_*")


@pytest.fixture(autouse=True)
def _breakers_closed():
    """A dependency one test made fail must not make the next test's requests fail fast."""
    for breaker in Breaker.instances:
        breaker.reset()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    """The live updates a test caused are sent before its fixtures go: the publisher thread
    reads the database, which the test's teardown empties (a read racing the TRUNCATE can
    deadlock it)."""
    from tracking.broadcasts import live_updates_flush

    live_updates_flush(timeout=5)


@pytest.fixture(autouse=True)
def _channel_layer_per_test():
    """Each test's event loop gets its own channel layer. channels_redis binds its receive
    lock to the loop of the first socket waiting on it; a socket a test left waiting would
    keep the shared layer bound to that test's closed loop ("bound to a different event
    loop" in the next test's sockets). A server has one loop, so this is the tests' own."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def celery_in_process_unless_a_real_worker(request):
    """A test that runs no real worker runs each task where it is sent (Celery's eager mode,
    inside the test's transaction). Otherwise its message would wait in the test broker for
    the session's worker, which would run it later against another test's data. Tests that
    go through a real worker (`celery_worker_process` in their fixtures) or exercise the
    broker itself (`@pytest.mark.real_broker`) keep the broker."""
    from ze_tracking.celery import app

    if "celery_worker_process" in request.fixturenames:
        yield
        return
    if request.node.get_closest_marker("real_broker"):
        yield
        # What the test published and no worker took stays out of later tests' way.
        try:
            app.control.purge()
        except Exception:  # a test that stopped the broker leaves nothing to purge
            pass
        return
    # Not eager_propagates: a task's failure is the worker's to log, not the request's.
    app.conf.update(task_always_eager=True)
    yield
    app.conf.update(task_always_eager=False)


# --- The people every endpoint is tested against ------------------------------------------


@pytest.fixture
def courier(db):
    """The courier who owns the order under test."""
    return CourierFactory(name="Ana Souza")


@pytest.fixture
def other_courier(db):
    return CourierFactory(name="Bruno Lima")


@pytest.fixture
def staff(db):
    return UserFactory(username="staff", is_staff=True, is_superuser=True)


@pytest.fixture
def courier_api(courier):
    return client_for(courier.user)


@pytest.fixture
def other_courier_api(other_courier):
    return client_for(other_courier.user)


@pytest.fixture
def staff_api(staff):
    return client_for(staff)


@pytest.fixture
def anonymous_api(db):
    return APIClient()


@pytest.fixture
def order(db):
    return OrderFactory()


@pytest.fixture
def in_transit_order(courier):
    now = timezone.now()
    return OrderFactory(courier=courier, status="in_transit", assigned_at=now - dt.timedelta(minutes=10),
                        started_at=now - dt.timedelta(minutes=5))  # fmt: skip
