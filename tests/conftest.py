"""Shared fixtures: the people every endpoint is tested against, a real Celery worker, and
a helper to wait on a condition with a deadline."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import SAO_PAULO, CourierFactory, OrderFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"


def wait_for(condition, *, timeout: float = 10.0, interval: float = 0.05, message: str = "condition"):
    """Poll `condition` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def database_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgis://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture(scope="session", autouse=True)
def _clean_broker():
    """Drop messages a previous, interrupted run may have left in the test Redis db."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real `celery worker` process on the test database and the test Redis broker."""
    env = {**os.environ, "DATABASE_URL": database_url(), "DB_CONN_MAX_AGE": "0"}
    log = open(OUTPUT / "celery-worker.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "ze_tracking", "worker", "-Q", "pings,notifications,maintenance",
         "--pool", "threads", "--concurrency", "4", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
         "-n", f"test-{uuid.uuid4().hex[:6]}@%h"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    from ze_tracking.celery import app

    wait_for(lambda: app.control.ping(timeout=0.5), timeout=60, message="the Celery worker to answer")
    yield process
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture
def worker(celery_worker_process, transactional_db):
    """Tests that run through the worker commit for real, so the worker sees their rows."""
    return celery_worker_process


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def courier(db):
    """The courier who owns the order under test."""
    return CourierFactory(name="Ana Souza")


@pytest.fixture
def other_courier(db):
    return CourierFactory(name="Bruno Lima")


@pytest.fixture
def staff(db):
    return UserFactory(username="staff", is_staff=True)


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


def ping(*, seconds_ago: float = 0, lat: float | None = None, lon: float | None = None, **extra) -> dict:
    """A valid ping as the app sends it, near São Paulo's Paulista avenue by default."""
    return {
        "event_id": str(uuid.uuid4()),
        "recorded_at": (timezone.now() - dt.timedelta(seconds=seconds_ago)).isoformat(),
        "lat": SAO_PAULO[0] + 0.01 if lat is None else lat,
        "lon": SAO_PAULO[1] + 0.01 if lon is None else lon,
        "accuracy_m": 5.0,
        **extra,
    }


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def asgi_server(celery_worker_process):
    """The real ASGI app (HTTP and websockets) under uvicorn, on the test database."""
    import requests

    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DATABASE_URL": database_url(),
        "DB_CONN_MAX_AGE": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WHITENOISE_USE_FINDERS": "1",
        "MAP_TILE_URL": "/static/no-tiles/{z}/{x}/{y}.png",  # no network here
    }
    log = open(OUTPUT / "asgi-server.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "ze_tracking.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return requests.get(f"{base_url}/healthz", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(answers, timeout=30, message="the ASGI server")
    yield base_url
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright; never a downloaded browser."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread while it runs; the test's own
    # ORM calls are still synchronous and run between browser steps, so Django's async guard
    # is lifted for the module.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield chromium
        chromium.close()
    # The loop ends with the module, so later tests get Django's guard back.
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
