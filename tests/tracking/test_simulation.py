from __future__ import annotations

import random

import pytest
from django.conf import settings

from tracking.geo import haversine_m
from tracking.simulation import SAO_PAULO_CENTER, destination_pick, path_plan, speed_pick


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
