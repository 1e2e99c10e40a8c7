from __future__ import annotations

import json as jsonlib
import random
import time
import uuid

import pytest
import requests
from django.conf import settings

from tracking.geo import haversine_m
from tracking.simulator.config import SimulationConfig
from tracking.simulator.courier import CourierRun
from tracking.simulator.geometry import SAO_PAULO_CENTER, destination_pick, path_plan, speed_pick


@pytest.mark.parametrize("seed", range(20))
def test_path_keeps_every_step_under_the_plausible_speed_and_ends_at_the_destination(seed):
    rng = random.Random(seed)
    start = SAO_PAULO_CENTER
    end = destination_pick(near=start, trip_km=3, radius_km=6, rng=rng)
    speed = speed_pick(factor=10, rng=rng)
    path = path_plan(start=start, end=end, speed_mps=speed, step_s=rng.choice([0.25, 1.0, 2.0]), rng=rng)

    assert speed < settings.TRACKING["MAX_SPEED_MPS"]
    assert (path[0].lat, path[0].lon) == start
    assert (path[-1].lat, path[-1].lon) == end
    for a, b in zip(path, path[1:], strict=False):
        assert b.t > a.t
        assert haversine_m(a.lat, a.lon, b.lat, b.lon) / (b.t - a.t) < settings.TRACKING["MAX_SPEED_MPS"]
    # Streets, not a straight line: longer than the crow flies, at most the Manhattan distance.
    assert path[-1].t * speed >= haversine_m(*start, *end) * 0.999


def test_destinations_stay_within_the_city():
    rng = random.Random(1)
    edge = (-23.5505 - 0.05, -46.6333)  # about 5.5 km south of the centre
    for _ in range(100):
        assert haversine_m(*destination_pick(near=edge, trip_km=2, radius_km=6, rng=rng), *SAO_PAULO_CENTER) < 6000


class ScriptedSession:
    """Stands in for the HTTP session: answers from a script and records what was sent."""

    def __init__(self, *answers: tuple[int, dict, dict]):
        self.answers = list(answers)
        self.sent: list[dict] = []

    def post(self, url, json=None, timeout=None):
        self.sent.append(json)
        status, body, headers = self.answers.pop(0)
        response = requests.Response()
        response.status_code, response._content = status, jsonlib.dumps(body).encode()
        response.headers.update(headers)
        return response


def courier_run(session: ScriptedSession) -> CourierRun:
    return CourierRun(
        number=1, courier_id=str(uuid.uuid4()), session=session, position=SAO_PAULO_CENTER,
        config=SimulationConfig(interval_s=2.0), rng=random.Random(1),
    )  # fmt: skip


def test_refused_batch_is_resent_unchanged_after_retry_after():
    session = ScriptedSession(
        (503, {"detail": "busy"}, {"Retry-After": "30"}), (202, {"accepted": 1, "rejected": []}, {})
    )
    courier = courier_run(session)
    batch = [{"event_id": str(uuid.uuid4()), "recorded_at": "2026-11-25T12:00:00-03:00", "lat": -23.5, "lon": -46.6}]

    courier._batch_send(batch)
    courier.tick()  # still inside Retry-After: nothing goes out
    assert len(session.sent) == 1
    assert courier.retry_at - time.monotonic() > 25

    courier.retry_at = 0  # Retry-After has passed
    courier.tick()
    assert session.sent == [{"pings": batch}, {"pings": batch}]
    assert not courier.outbox
    assert (courier.stats.http_errors, courier.stats.retries, courier.stats.pings_sent) == (1, 1, 1)
    assert courier.stats.pings_accepted == 1


def test_conflicting_event_drops_the_order_and_moves_on():
    session = ScriptedSession((409, {"detail": "Cannot apply 'assigned'.", "status": "assigned"}, {}))
    courier = courier_run(session)
    courier.order_take(order_id=str(uuid.uuid4()), destination=SAO_PAULO_CENTER)

    courier.tick()

    assert (courier.stage, courier.order_id) == ("idle", None)
    assert (courier.stats.event_conflicts, courier.stats.orders_lost) == (1, 1)
