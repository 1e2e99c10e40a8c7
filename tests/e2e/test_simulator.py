"""The courier simulator against a real server (uvicorn) and a real Celery worker."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from io import StringIO

import pytest
import requests
from django.core.management import call_command

from orders.models import Order
from tests.conftest import OUTPUT, ROOT, database_url, wait_for
from tracking.models import OrderLastLocation, Ping


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    """The ASGI app in a uvicorn process on the test database; yields its base URL."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url(), "DB_CONN_MAX_AGE": "0"}
    log = open(OUTPUT / "simulator-server.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "ze_tracking.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or answers(f"{base_url}/healthz"), timeout=30, message="uvicorn")
        assert process.poll() is None, "uvicorn exited; see test-output/simulator-server.log"
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def summary_count(text: str, label: str) -> int:
    return int(re.search(rf"(\d+) {label}", text).group(1))


def test_simulated_couriers_deliver_every_order_with_quirky_pings_stored_once(server, worker):
    out = StringIO()
    call_command(
        "simulate_couriers",
        "--couriers", "2", "--orders", "2", "--speed", "4", "--trip-km", "0.4",
        "--interval", "0.5", "--ping-every", "0.5", "--quirk-rate", "0.5", "--seed", "7",
        "--duration", "40", "--base-url", server,
        stdout=out,
    )  # fmt: skip
    summary = out.getvalue().split("Summary")[-1]

    assert "2 delivered of 2" in summary, summary
    assert summary_count(summary, "duplicates") > 0
    assert summary_count(summary, "late") > 0
    assert summary_count(summary, "rejected") == 0
    orders = list(Order.objects.all())
    assert [o.status for o in orders] == ["delivered", "delivered"]
    assert OrderLastLocation.objects.filter(order__in=orders).count() == 2

    # Every distinct ping sent, plus the three events of each order, stored exactly once.
    expected = summary_count(summary, "sent in") - summary_count(summary, "duplicates") + 3 * len(orders)
    wait_for(lambda: Ping.objects.count() == expected, timeout=10, message=f"{expected} stored pings")
    assert Ping.objects.values("event_id").distinct().count() == expected
    for order in orders:
        assert Ping.objects.filter(order=order, attributes__simulated=True).exists()
    assert not Ping.objects.filter(suspect_reason__isnull=False).exists()
