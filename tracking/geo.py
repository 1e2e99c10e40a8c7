"""Small geodesy shared by enrichment and the read side."""

from __future__ import annotations

import math

from django.db.models import FloatField, Func

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres; within 0.5 % of PostGIS geography at city scale."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


class Latitude(Func):
    """A geography point's latitude, as PostgreSQL reads it: a float, no geometry object to
    build in Python (the hot reads need the two numbers only). NULL stays NULL."""

    template = "ST_Y(%(expressions)s::geometry)"
    output_field = FloatField()


class Longitude(Func):
    """A geography point's longitude, as `Latitude`."""

    template = "ST_X(%(expressions)s::geometry)"
    output_field = FloatField()
