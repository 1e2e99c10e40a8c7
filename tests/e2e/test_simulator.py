"""The courier simulator against a real server (uvicorn) and a real Celery worker."""

from __future__ import annotations

import re
from io import StringIO

from django.core.management import call_command

from orders.models import Order
from tests.support.waiting import wait_for
from tracking.models import OrderLastLocation, Ping


def summary_count(text: str, label: str) -> int:
    return int(re.search(rf"(\d+) {label}", text).group(1))


def test_simulated_couriers_deliver_every_order_with_quirky_pings_stored_once(asgi_server, worker):
    out = StringIO()
    call_command(
        "simulate_couriers",
        "--couriers", "2", "--orders", "2", "--speed", "4", "--trip-km", "0.4",
        "--interval", "0.5", "--ping-every", "0.5", "--quirk-rate", "0.5", "--seed", "7",
        "--duration", "40", "--base-url", asgi_server,
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
