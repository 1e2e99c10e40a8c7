"""`GET /api/v1/orders/{id}/location`, polled by every courier app and the backoffice: its
read, its row, its payload and the token check it rides on, in this one module.

The ORM version would be DRF's token check (`ApiTokenAuthentication`: the token with its
user and courier profile, one query), then
`Order.objects.select_related("courier", "last_location").get(id=order_id)` and
`OrderLocationSerializer(order).data`. The shortcut reads the token and the order in one
statement (one round trip instead of two), compiled once per process and prepared
(`OneRowQuery`), the order as plain values and coordinates (no model or geometry objects),
and writes the payload out without DRF's field walk; a test holds it equal to the
serializer's, byte for byte. What it buys is measured in docs/PERFORMANCE.md ("Read path").
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.db.models import F
from rest_framework import serializers

from couriers.authentication import API_TOKEN, ApiTokenAuthentication, api_token_digest, api_token_in_header
from infra.db.queries import OneRowQueries, OneRowQuery
from orders.models import Order
from tracking.geo import Latitude, Longitude


@dataclass(frozen=True, slots=True)
class OrderLocationRow:
    """What the route shows of an order, plus its courier's id for the ownership check. The
    `location_` values are the last location's, None while the order has none."""

    id: uuid.UUID
    status: str
    courier_id: uuid.UUID | None
    courier_name: str | None
    destination_lat: float
    destination_lon: float
    location_lat: float | None
    location_lon: float | None
    location_accuracy_m: float | None
    location_recorded_at: dt.datetime | None
    location_updated_at: dt.datetime | None
    location_distance_to_destination_m: float | None
    location_eta_seconds: int | None


ORDER_LOCATION = OneRowQuery(
    lambda: Order.objects.values(
        "id", "status", "courier_id",
        courier_name=F("courier__name"),
        destination_lat=Latitude("destination"), destination_lon=Longitude("destination"),
        location_lat=Latitude("last_location__location"), location_lon=Longitude("last_location__location"),
        location_accuracy_m=F("last_location__accuracy_m"),
        location_recorded_at=F("last_location__recorded_at"),
        location_updated_at=F("last_location__updated_at"),
        location_distance_to_destination_m=F("last_location__distance_to_destination_m"),
        location_eta_seconds=F("last_location__eta_seconds"),
    ),
    field="id",
)  # fmt: skip
_ORDER_LOCATION_WITH_TOKEN = OneRowQueries(API_TOKEN, ORDER_LOCATION)


@dataclass(frozen=True, slots=True)
class ReadWithToken:
    """The order as the token check's statement read it (None: no such order)."""

    row: OrderLocationRow | None


def order_location_get(*, order_id: uuid.UUID) -> OrderLocationRow | None:
    found = ORDER_LOCATION.get(order_id)
    return None if found is None else OrderLocationRow(**found)


def order_location_token_check(request, *, order_id: uuid.UUID) -> ReadWithToken | None:
    """With an API token in the header: check it by knox's rules (`ApiTokenAuthentication`)
    and read the order in the same statement, whatever the token turns out to be; the
    request is then authenticated as the token's user and DRF's own check does nothing.
    Without one (a session, anonymous): None, and DRF authenticates as usual. The read is
    the same whoever asks: the caller still decides who may see the row."""
    token = api_token_in_header(request)
    if token is None:
        return None
    found, order = _ORDER_LOCATION_WITH_TOKEN.get(api_token_digest(token), order_id)
    request.user, request.auth = ApiTokenAuthentication().token_accept(found)
    return ReadWithToken(row=None if order is None else OrderLocationRow(**order))


_DATETIME = serializers.DateTimeField()


def order_location_payload(row: OrderLocationRow) -> dict:
    """`OrderLocationSerializer`'s payload, written out: DRF's walk of the fields cost more
    than the rest of the read. The serializer stays the definition (the schema, the fleet
    socket); a test holds the two equal, case by case."""
    located = row.location_recorded_at is not None
    return {
        "order_id": str(row.id),
        "status": row.status,
        "courier": {"id": str(row.courier_id), "name": row.courier_name} if row.courier_id is not None else None,
        "location": {
            "lat": row.location_lat,
            "lon": row.location_lon,
            "accuracy_m": row.location_accuracy_m,
            # DRF renders None as None; its stubs take a datetime only.
            "recorded_at": _DATETIME.to_representation(row.location_recorded_at),  # type: ignore[arg-type]
        }
        if located
        else None,
        "distance_to_destination_m": row.location_distance_to_destination_m,
        "eta_seconds": row.location_eta_seconds,
        "updated_at": _DATETIME.to_representation(row.location_updated_at) if located else None,  # type: ignore[arg-type]
        "destination": {"lat": row.destination_lat, "lon": row.destination_lon},
    }
