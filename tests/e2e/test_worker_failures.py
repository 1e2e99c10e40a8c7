"""A batch holding a ping the database refuses, through the real worker and broker: the good
pings are stored, the bad one dead-lettered, and the message is done with (acknowledged, not
retried forever nor dropped with its neighbours)."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from tests.support.builders import ping
from tests.support.waiting import wait_for
from tracking.models import OrderLastLocation, Ping, PingDeadLetter
from tracking.tasks import ping_batch_record


def test_a_refused_ping_is_dead_lettered_by_the_worker_and_its_batch_stored(worker, courier, in_transit_order):
    batch = [ping(seconds_ago=4 - i, lat=-23.5700 + i * 0.0001) for i in range(4)]
    batch[1]["attributes"] = {"note": "\ud800"}  # valid JSON; jsonb refuses it

    ping_batch_record.apply_async(
        kwargs={"courier_id": str(courier.id), "received_at": timezone.now().isoformat(), "pings": batch}
    )

    wait_for(lambda: PingDeadLetter.objects.exists(), timeout=30, message="the refused ping's dead letter")
    assert set(map(str, Ping.objects.values_list("event_id", flat=True))) == {batch[i]["event_id"] for i in (0, 2, 3)}
    assert PingDeadLetter.objects.get().event_id == batch[1]["event_id"]
    assert OrderLastLocation.objects.get(order=in_transit_order).location.y == pytest.approx(batch[-1]["lat"])
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    wait_for(
        lambda: broker.llen("pings") == 0 and broker.hlen("unacked") == 0,
        timeout=10,
        message="the message to be acknowledged",
    )
