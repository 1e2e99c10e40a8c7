"""Real processes the tests start and stop: Celery workers and beat, redis-server, a Python
snippet of the project."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import redis
import requests
from django.conf import settings

from tests.support import OUTPUT, ROOT
from tests.support.aws import AWS_TEST_ENV, SnsEmulator
from tests.support.database import database_url
from tests.support.network import free_port
from tests.support.waiting import wait_for

ALL_QUEUES = "pings,notifications,maintenance"


def python_run(script: str, *args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    """`python -c script args…` in the checkout with `env`, as a fresh process of the project."""
    return subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def web_answers(url: str, *, timeout: float = 5) -> bool:
    """Whether the server answers `url` (a health route) with 200 now."""
    try:
        return requests.get(url, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def redis_answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


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
        wait_for(lambda: redis_answers(self.client()), timeout=10, message="the test's Redis to answer")

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


# --- Celery -------------------------------------------------------------------------------


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


def celery_beat_start(*, name: str, prefix: str, env: dict | None = None) -> tuple[subprocess.Popen, object]:
    """A real `celery beat` process whose RedBeat keys start with `prefix`; the process and a
    function that reads its log so far."""
    env = {**os.environ, **(env or {}), "REDBEAT_KEY_PREFIX": prefix, "LOG_LEVEL": "DEBUG"}
    log_path = OUTPUT / f"beat-{name}.log"
    log = open(log_path, "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "ze_tracking", "beat", "--loglevel", "DEBUG"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return process, lambda: log_path.read_text()


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
        **AWS_TEST_ENV,
        "DATABASE_URL": database_url(),
        "DB_CONN_MAX_AGE": "0",
        "NOTIFICATIONS_BACKEND": "sns",
        "NOTIFICATIONS_SNS_TOPIC_ARN": f"arn:aws:sns:us-east-1:123456789012:{SnsEmulator.TOPIC}",
        "AWS_ENDPOINT_URL_SNS": sns_emulator.endpoint,
        "NOTIFICATIONS_RETRY_BACKOFF_S": "1",
        "NOTIFICATIONS_RETRY_BACKOFF_MAX_S": "2",
    }
    process = celery_worker_start(env=env, name="worker")
    from ze_tracking.celery import app

    assert sns_emulator.topic_arn == env["NOTIFICATIONS_SNS_TOPIC_ARN"]
    wait_for(lambda: app.control.ping(timeout=0.5), timeout=60, message="the Celery worker to answer")
    yield process
    celery_worker_stop(process)


@pytest.fixture
def worker(celery_worker_process, transactional_db):
    """Tests that run through the worker commit for real, so the worker sees their rows."""
    return celery_worker_process
