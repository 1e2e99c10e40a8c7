"""Payloads shared by the REST API and the websockets."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec
from rest_framework import serializers

from couriers.serializers import CourierRefSerializer
from infra.http.serializers import (
    EventLocationInputSerializer,
    FiniteFloatField,
    JsonbObjectField,
    RecordedAtField,
    jsonb_object_fits,
    recorded_at_validate,
    tiny_to_zero,
)
from orders.models import ACTIVE_STATUSES
from tracking.rules import tracking_rules


class PingInputSerializer(EventLocationInputSerializer):
    event_id = serializers.UUIDField()
    recorded_at = RecordedAtField()
    # Bounds that make physical sense; they also keep the values inside `real` (see
    # infra.http.serializers).
    speed_mps = FiniteFloatField(min_value=0, max_value=1000, required=False, allow_null=True)
    heading_deg = FiniteFloatField(min_value=0, required=False, allow_null=True)
    order_id = serializers.UUIDField(required=False, allow_null=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        # The attributes' limits are today's rules, not those of the import.
        rules = tracking_rules()
        return {
            **super().get_fields(),
            "attributes": JsonbObjectField(
                max_bytes=rules.max_attributes_bytes, max_depth=rules.max_attributes_depth, required=False, default=dict
            ),
        }

    def validate_heading_deg(self, value):
        if value is not None and value >= 360:
            raise serializers.ValidationError("Must be in [0, 360).")
        return value

    def validate_order_id(self, value):
        if value is not None and value not in self.context["active_order_ids"]:
            raise serializers.ValidationError("Is not an active order of this courier.")
        return value


class PingInput(msgspec.Struct):
    """The same rules as `PingInputSerializer`, checked in native code: `ping_validate_fast`
    accepts a ping only if the serializer would accept it, with the same values (a property
    test holds them together). Anything else goes to the serializer, which says why."""

    event_id: uuid.UUID
    recorded_at: Annotated[str, msgspec.Meta(max_length=64)]  # parsed as Django parses it
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    accuracy_m: Annotated[float, msgspec.Meta(ge=0, le=100_000)] | None = None
    speed_mps: Annotated[float, msgspec.Meta(ge=0, le=1000)] | None = None
    heading_deg: Annotated[float, msgspec.Meta(ge=0, lt=360)] | None = None
    order_id: uuid.UUID | None = None
    attributes: dict[str, Any] = {}


def ping_validate_fast(raw, *, active_order_ids: set, now: dt.datetime) -> dict | None:
    """The validated ping (as the serializer's `validated_data`, without empty values), or
    None when the serializer must decide."""
    try:
        ping = msgspec.convert(raw, PingInput)
        recorded_at = recorded_at_validate(dt.datetime.fromisoformat(ping.recorded_at), now=now)
    except (msgspec.ValidationError, ValueError, serializers.ValidationError):
        return None
    if ping.order_id is not None and ping.order_id not in active_order_ids:
        return None
    rules = tracking_rules()
    if ping.attributes and not jsonb_object_fits(
        ping.attributes, max_bytes=rules.max_attributes_bytes, max_depth=rules.max_attributes_depth
    ):
        return None
    data = {"event_id": ping.event_id, "recorded_at": recorded_at, "lat": tiny_to_zero(ping.lat),
            "lon": tiny_to_zero(ping.lon)}  # fmt: skip
    for name in ("accuracy_m", "speed_mps", "heading_deg"):
        value = getattr(ping, name)
        if value is not None:
            data[name] = tiny_to_zero(value)
    if ping.order_id is not None:
        data["order_id"] = ping.order_id
    if ping.attributes:
        data["attributes"] = ping.attributes
    return data


class LocationSerializer(serializers.Serializer):
    lat = serializers.FloatField(source="location.y")
    lon = serializers.FloatField(source="location.x")
    accuracy_m = serializers.FloatField(allow_null=True)
    recorded_at = serializers.DateTimeField()


class OrderLocationSerializer(serializers.Serializer):
    """The last location of an order: `GET /api/v1/orders/{id}/location` and the fleet socket."""

    order_id = serializers.UUIDField(source="id")
    status = serializers.CharField()
    courier = CourierRefSerializer(allow_null=True)
    location = LocationSerializer(source="last_location", allow_null=True)
    distance_to_destination_m = serializers.FloatField(
        source="last_location.distance_to_destination_m", allow_null=True, default=None
    )
    eta_seconds = serializers.IntegerField(source="last_location.eta_seconds", allow_null=True, default=None)
    updated_at = serializers.DateTimeField(source="last_location.updated_at", allow_null=True, default=None)
    destination = serializers.SerializerMethodField()

    def get_destination(self, order) -> dict:
        return order.destination_latlon


class CourierLocationSerializer(serializers.Serializer):
    courier_id = serializers.UUIDField(source="id")
    name = serializers.CharField()
    location = LocationSerializer(source="last_location", allow_null=True)
    speed_mps = serializers.FloatField(source="last_location.speed_mps", allow_null=True, default=None)
    heading_deg = serializers.FloatField(source="last_location.heading_deg", allow_null=True, default=None)
    updated_at = serializers.DateTimeField(source="last_location.updated_at", allow_null=True, default=None)
    active_order_ids = serializers.SerializerMethodField()

    def get_active_order_ids(self, courier) -> list[str]:
        ids = getattr(courier, "active_order_ids", None)  # read with the courier (`couriers_with_location`)
        if ids is None:
            ids = courier.orders.filter(status__in=ACTIVE_STATUSES).order_by("created_at").values_list("id", flat=True)
        return [str(i) for i in ids]


def _epoch_ms(value: dt.datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _rounded(value: float | None, digits: int) -> float | int | None:
    return None if value is None else round(value, digits)


# The fleet socket's compact rows (positions to 5 decimals, about a metre; times as epoch
# milliseconds): the map reads them by position, named in static/tracking/backoffice.js.
def courier_fleet_row(courier, *, with_name: bool) -> list:
    """`[id, lat, lon, recorded_at_ms, speed_mps]`, plus the name in the full state: a move
    does not repeat it."""
    last = courier.last_location
    row = [str(courier.id), round(last.location.y, 5), round(last.location.x, 5), _epoch_ms(last.recorded_at),
           _rounded(last.speed_mps, 1)]  # fmt: skip
    return [*row, courier.name] if with_name else row


def order_fleet_row(order) -> list:
    """`[id, status, destination_lat, destination_lon, courier_id, courier_name, distance_m, eta_s]`."""
    last = getattr(order, "last_location", None)
    courier = order.courier
    return [str(order.id), order.status, round(order.destination.y, 5), round(order.destination.x, 5),
            courier and str(courier.id), courier and courier.name,
            _rounded(last and last.distance_to_destination_m, 0), last and last.eta_seconds]  # fmt: skip


def order_track_geojson(*, order, trail) -> dict:
    """`GET /orders/{id}/track`: the trail (`tracking.selectors.order_trail_list`) as a
    GeoJSON FeatureCollection of points."""
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [p["lon"], p["lat"]]},
            "properties": {
                "event_id": str(p["event_id"]),
                "recorded_at": p["recorded_at"].isoformat(),
                "accuracy_m": p["accuracy_m"],
                "speed_mps": p["speed_mps"],
                "heading_deg": p["heading_deg"],
            },
        }
        for p in trail
    ]
    return {"type": "FeatureCollection", "properties": {"order_id": str(order.id)}, "features": features}
