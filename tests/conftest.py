"""Shared fixtures: the people every endpoint is tested against, a real Celery worker, and
a helper to wait on a condition with a deadline."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
import redis
import requests
from channels.layers import channel_layers
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from moto.server import ThreadedMotoServer
from rest_framework.test import APIClient

from infra.http.breakers import Breaker
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


def private_broker_env(*, redis_db: int) -> dict:
    """The environment of processes that test a worker's failures: a Redis db of their own,
    emptied, so the session's worker never sees their messages, and a short visibility
    timeout, so a dead worker's messages come back quickly."""
    broker = settings.REDIS_URL.rsplit("/", 1)[0] + f"/{redis_db}"
    redis.Redis.from_url(broker).flushdb()
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DB_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": broker,
        "CELERY_VISIBILITY_TIMEOUT": "3",
    }


def lock_waiter_wait(*, blocker, message: str) -> None:
    """Wait until a session of the test database waits on a lock (the one `blocker`, a
    connection of the test's own, holds)."""
    name = settings.DATABASES["default"]["NAME"]

    def someone_waits():
        blocker.execute("SELECT pg_stat_clear_snapshot()")
        return blocker.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = %s", [name]
        ).fetchone()[0]

    wait_for(someone_waits, timeout=30, message=message)


def unacked_overdue_wait(env: dict) -> None:
    """Wait until the broker holds a dead worker's unacknowledged messages past their
    visibility timeout: a worker that starts then takes them back."""
    unacked = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    wait_for(
        lambda: (
            (scores := unacked.zrange("unacked_index", 0, -1, withscores=True))
            and all(score < time.time() - int(env["CELERY_VISIBILITY_TIMEOUT"]) for _, score in scores)
        ),
        timeout=30,
        message="the dead worker's messages to be overdue",
    )


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_port():
    """A port that accepts connections (the kernel completes them) and never answers, like
    a Redis or broker that hangs or a network path that drops replies."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


class OwnRedis:
    """A redis-server on its own port (no persistence, like the checkout's), started,
    frozen and crashed by the test."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(OUTPUT / f"redis-{self.port}.log", "a")  # noqa: SIM115 (the child owns it)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for(self.answering, timeout=10, message="the test's Redis to answer")

    def answering(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=1, decode_responses=True)

    def crash(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def freeze(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis():
    server = OwnRedis()
    OUTPUT.mkdir(exist_ok=True)
    server.start()
    yield server
    server.stop()


class SnsEmulator:
    """moto's server (in this process, on its own thread and port) with one topic and an SQS
    queue subscribed to it (raw delivery off, so each SQS message is SNS's envelope with the
    message attributes). `stop` closes the port, so every publish fails as in an outage;
    `start` opens it again on the same port with the same topic and subscription, as SNS
    itself comes back."""

    TOPIC = "ze-order-notifications"
    QUEUE = "ze-order-notifications-test"

    def __init__(self, port: int):
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.server: ThreadedMotoServer | None = None
        self.topic_arn = ""

    @property
    def running(self) -> bool:
        return self.server is not None

    def client(self, service: str):
        return boto3.session.Session().client(
            service, region_name="us-east-1", endpoint_url=self.endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

        def answers():
            try:
                return requests.get(f"{self.endpoint}/moto-api/", timeout=0.5).status_code < 500
            except requests.RequestException:
                return False

        wait_for(answers, timeout=30, message="the SNS emulator to answer")
        if not self.topic_arn:
            self.topic_arn = self.client("sns").create_topic(Name=self.TOPIC)["TopicArn"]
            sqs = self.client("sqs")
            self.queue_url = sqs.create_queue(QueueName=self.QUEUE)["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            self.client("sns").subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def stop(self) -> None:
        self.server.stop()
        self.server._server.server_close()  # free the port: connections are refused, not queued
        self.server = None

    def received(self) -> list[dict]:
        """Drain the subscribed queue: each item is SNS's envelope (Message, MessageAttributes)."""
        sqs = self.client("sqs")
        messages = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture(scope="session")
def sns_emulator():
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per emulated request
    emulator = SnsEmulator(free_port())
    emulator.start()
    yield emulator
    if emulator.running:
        emulator.stop()


@pytest.fixture
def sns(sns_emulator):
    """The emulator, running, with an empty queue."""
    if not sns_emulator.running:
        sns_emulator.start()
    sns_emulator.received()
    return sns_emulator


ALL_QUEUES = "pings,notifications,maintenance"


def celery_worker_start(
    *, env: dict, name: str, queues: str = ALL_QUEUES, pool: str = "threads", concurrency: int = 4
) -> subprocess.Popen:
    """A real `celery worker` process of the project, logging to test-output/celery-<name>.log.
    Stop it with `celery_worker_stop`."""
    log = open(OUTPUT / f"celery-{name}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "ze_tracking", "worker", "-Q", queues, "--pool", pool,
         "--concurrency", str(concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat",
         "--loglevel", "INFO", "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    process.log = log
    return process


def celery_worker_stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=30)
    process.log.close()


@pytest.fixture
def spawn_celery_worker():
    """Start workers with their own environment (another broker, a short visibility
    timeout); every one started is stopped after the test."""
    started: list[subprocess.Popen] = []

    def spawn(**kwargs) -> subprocess.Popen:
        started.append(celery_worker_start(**kwargs))
        return started[-1]

    yield spawn
    for process in started:
        celery_worker_stop(process)


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, sns_emulator):
    """The session's worker on the test database and the test Redis broker, sending
    consumer notifications to the SNS emulator, with short retry backoff."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DB_CONN_MAX_AGE": "0",
        "NOTIFICATIONS_BACKEND": "sns",
        "NOTIFICATIONS_SNS_TOPIC_ARN": f"arn:aws:sns:us-east-1:123456789012:{SnsEmulator.TOPIC}",
        "AWS_ENDPOINT_URL_SNS": sns_emulator.endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "NOTIFICATIONS_RETRY_BACKOFF_S": "1",
        "NOTIFICATIONS_RETRY_BACKOFF_MAX_S": "2",
    }
    process = celery_worker_start(env=env, name="worker")
    from ze_tracking.celery import app

    assert sns_emulator.topic_arn == env["NOTIFICATIONS_SNS_TOPIC_ARN"]
    wait_for(lambda: app.control.ping(timeout=0.5), timeout=60, message="the Celery worker to answer")
    yield process
    celery_worker_stop(process)


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


@pytest.fixture
def worker(celery_worker_process, transactional_db):
    """Tests that run through the worker commit for real, so the worker sees their rows."""
    return celery_worker_process


@pytest.fixture
def sqs_env(sns_emulator):
    """The environment deploy/ gives the app: sqs:// broker and one URL per Celery queue."""
    if not sns_emulator.running:
        sns_emulator.start()
    sqs = sns_emulator.client("sqs")
    suffix = uuid.uuid4().hex[:6]
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DB_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": f"sqs://testing:testing@127.0.0.1:{sns_emulator.port}",
        "SQS_IS_SECURE": "0",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    for name in ("pings", "notifications", "maintenance"):
        url = sqs.create_queue(QueueName=f"ze-tracking-test-{name}-{suffix}")["QueueUrl"]
        env[f"SQS_{name.upper()}_QUEUE_URL"] = url
    return env


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        from couriers.services import api_token_create

        _, token = api_token_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
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


def order_act(order, courier, event_type, *, seconds_ago=0.0, lat=-23.57, lon=SAO_PAULO[1], event_id=None):
    """A courier action applied through the service, as the events API applies it."""
    from orders.services import order_transition

    return order_transition(
        order_id=order.id,
        courier=courier,
        event_type=event_type,
        event_id=event_id or uuid.uuid4(),
        recorded_at=timezone.now() - dt.timedelta(seconds=seconds_ago),
        lat=lat,
        lon=lon,
    )


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
        # As Procfile.dev: nothing stands in front, so no X-Forwarded-For is trusted.
        [sys.executable, "-m", "uvicorn", "ze_tracking.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--no-proxy-headers"],
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


@pytest.fixture
def page(browser, asgi_server, worker, request):
    """A browser tab on the ASGI server; a test module may set VIEWPORT = (width, height)."""
    width, height = getattr(request.module, "VIEWPORT", (1280, 800))
    context = browser.new_context(base_url=asgi_server, viewport={"width": width, "height": height})
    yield context.new_page()
    context.close()


def csp_violations_watch(page) -> list[str]:
    """Chromium reports each thing the Content-Security-Policy blocked on the console."""
    seen: list[str] = []
    page.on("console", lambda message: seen.append(message.text) if "Content Security Policy" in message.text else None)
    return seen


@pytest.fixture
def csp_violations(page):
    """What the page's policy blocked; a test asserts it stays empty."""
    return csp_violations_watch(page)


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
