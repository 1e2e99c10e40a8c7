"""Input fields shared by the apps' APIs: finite coordinates and device times."""

from __future__ import annotations

import datetime as dt
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
