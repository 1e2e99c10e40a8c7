"""Payloads shared by the REST API and the websockets."""

from __future__ import annotations

import datetime as dt
import json
import math

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers


class FiniteFloatField(serializers.FloatField):
    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("invalid")
        return value


def recorded_at_validate(value: dt.datetime, *, now: dt.datetime | None = None) -> dt.datetime:
    """Device times must carry an offset and fall inside the accepted window."""
    if timezone.is_naive(value):
        raise serializers.ValidationError("Must include a UTC offset (ISO 8601, e.g. 2026-11-25T12:00:00-03:00).")
    now = now or timezone.now()
    rules = settings.TRACKING
    if value > now + dt.timedelta(seconds=rules["MAX_FUTURE_S"]):
        raise serializers.ValidationError(f"Is more than {rules['MAX_FUTURE_S']} s in the future.")
    if value < now - dt.timedelta(seconds=rules["MAX_AGE_S"]):
        raise serializers.ValidationError(f"Is more than {rules['MAX_AGE_S']} s old.")
    return value


class RecordedAtField(serializers.DateTimeField):
    def __init__(self, **kwargs):
        kwargs.setdefault("default_timezone", None)
        super().__init__(**kwargs)

    def enforce_timezone(self, value):
        # Keep the offset the device sent; naive values are rejected by the validator.
        return value

    def to_internal_value(self, value):
        return recorded_at_validate(super().to_internal_value(value))


class PointInputSerializer(serializers.Serializer):
    lat = FiniteFloatField(min_value=-90, max_value=90)
    lon = FiniteFloatField(min_value=-180, max_value=180)


class EventLocationInputSerializer(PointInputSerializer):
    accuracy_m = FiniteFloatField(min_value=0, required=False, allow_null=True)


class PingInputSerializer(EventLocationInputSerializer):
    event_id = serializers.UUIDField()
    recorded_at = RecordedAtField()
    speed_mps = FiniteFloatField(min_value=0, required=False, allow_null=True)
    heading_deg = FiniteFloatField(min_value=0, required=False, allow_null=True)
    order_id = serializers.UUIDField(required=False, allow_null=True)
    attributes = serializers.DictField(required=False, default=dict)

    def validate_attributes(self, value):
        encoded = json.dumps(value)
        if "\\u0000" in encoded:  # PostgreSQL's jsonb cannot store NUL
            raise serializers.ValidationError("Must not contain NUL characters.")
        limit = settings.TRACKING["MAX_ATTRIBUTES_BYTES"]
        if len(encoded.encode()) > limit:
            raise serializers.ValidationError(f"Must be at most {limit} bytes of JSON.")
        return value

    def validate_heading_deg(self, value):
        if value is not None and value >= 360:
            raise serializers.ValidationError("Must be in [0, 360).")
        return value

    def validate_order_id(self, value):
        if value is not None and value not in self.context["active_order_ids"]:
            raise serializers.ValidationError("Is not an active order of this courier.")
        return value


class LocationSerializer(serializers.Serializer):
    lat = serializers.FloatField(source="location.y")
    lon = serializers.FloatField(source="location.x")
    accuracy_m = serializers.FloatField(allow_null=True)
    recorded_at = serializers.DateTimeField()


class CourierRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


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
        return {"lat": order.destination.y, "lon": order.destination.x}


class CourierLocationSerializer(serializers.Serializer):
    courier_id = serializers.UUIDField(source="id")
    name = serializers.CharField()
    location = LocationSerializer(source="last_location", allow_null=True)
    speed_mps = serializers.FloatField(source="last_location.speed_mps", allow_null=True, default=None)
    heading_deg = serializers.FloatField(source="last_location.heading_deg", allow_null=True, default=None)
    updated_at = serializers.DateTimeField(source="last_location.updated_at", allow_null=True, default=None)
    active_order_ids = serializers.SerializerMethodField()

    def get_active_order_ids(self, courier) -> list[str]:
        orders = getattr(courier, "active_orders", None)
        if orders is None:
            orders = courier.orders.filter(status__in=("assigned", "in_transit"))
        return [str(o.id) for o in orders]
