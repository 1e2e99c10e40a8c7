"""Where simulated couriers drive: start points, destinations and street-like paths in São
Paulo, sampled as GPS fixes that stay under the server's plausibility speed."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from tracking.geo import haversine_m
from tracking.rules import tracking_rules

# Praça da Sé, São Paulo's kilometre zero.
SAO_PAULO_CENTER = (-23.5505, -46.6333)
METRES_PER_DEGREE_LAT = 111_320.0
# Keep a margin under the server's plausibility limit: a ping above it is flagged and never
# moves the map, which would make a fast simulation look frozen.
SPEED_LIMIT_SHARE = 0.75


@dataclass(frozen=True)
class Fix:
    """One GPS position along a path, `t` seconds after the path starts."""

    t: float
    lat: float
    lon: float
    speed_mps: float
    heading_deg: float


def point_offset(lat: float, lon: float, *, north_m: float, east_m: float) -> tuple[float, float]:
    return (
        lat + north_m / METRES_PER_DEGREE_LAT,
        lon + east_m / (METRES_PER_DEGREE_LAT * math.cos(math.radians(lat))),
    )


def heading_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    north = (lat2 - lat1) * METRES_PER_DEGREE_LAT
    east = (lon2 - lon1) * METRES_PER_DEGREE_LAT * math.cos(math.radians(lat1))
    return math.degrees(math.atan2(east, north)) % 360.0


def speed_pick(*, factor: float, rng: random.Random) -> float:
    """A courier's cruising speed: 8-12 m/s times the simulation factor, capped under the
    server's plausibility limit."""
    limit = tracking_rules().max_speed_mps * SPEED_LIMIT_SHARE
    return min(rng.uniform(8.0, 12.0) * factor, limit)


def path_plan(
    *, start: tuple[float, float], end: tuple[float, float], speed_mps: float, step_s: float, rng: random.Random
) -> list[Fix]:
    """Street-like path from `start` to `end`, sampled every `step_s` seconds at `speed_mps`.

    Steps: cut the trip into two to four legs that alternate north-south and east-west (city
    blocks on a grid aligned with the map); walk them at constant speed; add a little GPS
    noise to every fix but the first and the last, which are exactly `start` and `end`."""
    legs = rng.randint(2, 4)
    along_lat = rng.random() < 0.5
    lat_legs = (legs + along_lat) // 2
    lon_legs = legs - lat_legs
    lat_shares = _shares(lat_legs, rng)
    lon_shares = _shares(lon_legs, rng)
    corners = [start]
    lat, lon = start
    for _ in range(legs):
        if along_lat:
            lat += (end[0] - start[0]) * lat_shares.pop()
        else:
            lon += (end[1] - start[1]) * lon_shares.pop()
        corners.append((lat, lon))
        along_lat = not along_lat
    corners[-1] = end  # no rounding drift at the door

    lengths = [haversine_m(*a, *b) for a, b in zip(corners, corners[1:], strict=False)]
    total = sum(lengths)
    # Noise proportional to the step keeps every implied speed within 20 % of the speed.
    noise_m = min(3.0, speed_mps * step_s * 0.1)
    step_m = speed_mps * step_s
    fixes = [Fix(0.0, start[0], start[1], 0.0, heading_deg(*start, *end))]
    leg, leg_start_m = 0, 0.0
    distance = step_m
    while distance < total - step_m / 2:
        while distance > leg_start_m + lengths[leg]:
            leg_start_m += lengths[leg]
            leg += 1
        a, b = corners[leg], corners[leg + 1]
        share = (distance - leg_start_m) / max(lengths[leg], 1e-9)
        lat, lon = point_offset(
            a[0] + (b[0] - a[0]) * share,
            a[1] + (b[1] - a[1]) * share,
            north_m=rng.uniform(-noise_m, noise_m),
            east_m=rng.uniform(-noise_m, noise_m),
        )
        fixes.append(Fix(distance / speed_mps, lat, lon, speed_mps, heading_deg(*a, *b)))
        distance += step_m
    fixes.append(Fix(max(total / speed_mps, fixes[-1].t + step_s / 2), end[0], end[1], 0.0, fixes[-1].heading_deg))
    return fixes


def _shares(count: int, rng: random.Random) -> list[float]:
    """`count` positive parts that add up to 1 (how much of a direction each leg covers)."""
    weights = [rng.uniform(0.2, 1.0) for _ in range(count)]
    return [w / sum(weights) for w in weights]


def destination_pick(
    *, near: tuple[float, float], trip_km: float, radius_km: float, rng: random.Random
) -> tuple[float, float]:
    """A consumer a short trip from the courier (the store nearest the consumer dispatches),
    kept within `radius_km` of São Paulo's centre."""
    distance_m = rng.uniform(0.3, 1.0) * trip_km * 1000
    bearing = rng.uniform(0, 2 * math.pi)
    if haversine_m(*near, *SAO_PAULO_CENTER) > radius_km * 1000 - distance_m:
        bearing = math.radians(heading_deg(*near, *SAO_PAULO_CENTER)) + rng.uniform(-1.0, 1.0)
    return point_offset(*near, north_m=distance_m * math.cos(bearing), east_m=distance_m * math.sin(bearing))


def start_pick(*, radius_km: float, rng: random.Random) -> tuple[float, float]:
    distance_m = math.sqrt(rng.random()) * radius_km * 700
    bearing = rng.uniform(0, 2 * math.pi)
    return point_offset(
        *SAO_PAULO_CENTER, north_m=distance_m * math.cos(bearing), east_m=distance_m * math.sin(bearing)
    )
