"""The Redis that `make run` starts (scripts/redis.sh) keeps what it was given across a crash:
batches queued there were answered 202."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import redis

from tests.support import ROOT
from tests.support.network import free_port
from tests.support.processes import redis_answers
from tests.support.waiting import wait_for

pytestmark = pytest.mark.processes  # redis-server, through scripts/redis.sh


def redis_start(port: int, folder) -> redis.Redis:
    subprocess.run(["bash", "scripts/redis.sh", str(port), str(folder)], cwd=ROOT, check=True, capture_output=True)
    return redis.Redis(port=port)


def test_a_batch_queued_in_the_local_redis_survives_a_redis_crash(tmp_path):
    port = free_port()
    client = redis_start(port, tmp_path)
    try:
        client.lpush("pings", b"a batch answered 202")
        os.kill(int((tmp_path / "redis.pid").read_text()), signal.SIGKILL)
        wait_for(lambda: not redis_answers(client), timeout=10, message="Redis to be gone")

        client = redis_start(port, tmp_path)

        assert client.lrange("pings", 0, -1) == [b"a batch answered 202"]
    finally:
        redis_stop(client)


def test_a_local_redis_started_without_persistence_gets_it(tmp_path):
    port = free_port()
    subprocess.run(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--daemonize", "yes", "--dir", str(tmp_path)], check=True)  # fmt: skip
    client = redis.Redis(port=port)
    try:
        wait_for(lambda: redis_answers(client), timeout=10, message="Redis to answer")
        redis_start(port, tmp_path)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
    finally:
        redis_stop(client)


def redis_stop(client: redis.Redis) -> None:
    os.kill(client.info("server")["process_id"], signal.SIGKILL)
