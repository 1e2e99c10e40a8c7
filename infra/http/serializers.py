"""Input fields shared by the apps' APIs: storable numbers, JSON and device times.

Validation equals storability: whatever these fields accept, PostgreSQL stores as sent.
- Numbers are finite and inside each field's physical range, which keeps them far from
  the limits of `real` (single precision, ±3.4e38). Magnitudes under `TINY` are stored as
  0: PostgreSQL refuses a `real` that underflows to zero (below ≈ 1.4e-45), and nothing
  measured in metres, metres per second or degrees is that small.
- JSON objects hold only what jsonb accepts: text without NUL or unpaired UTF-16
  surrogates, finite numbers, integers of 64 bits, at most `max_depth` levels and
  `max_bytes` of JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

TINY = 1e-30
MAX_OFFSET_WEST, MAX_OFFSET_EAST = dt.timedelta(hours=12), dt.timedelta(hours=14)


class FiniteFloatField(serializers.FloatField):
    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("invalid")
        try:
            value = super().to_internal_value(data)
        except OverflowError:  # an integer beyond any float
            self.fail("invalid")
        if not math.isfinite(value):
            self.fail("invalid")
        return tiny_to_zero(value)


def tiny_to_zero(value: float) -> float:
    return 0.0 if abs(value) < TINY else value


def json_storable_problem(value: object, *, max_depth: int, depth: int = 1) -> str | None:
    """What jsonb would refuse in `value` (parsed JSON), or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return "Must not contain NUL characters."
        try:
            value.encode()
        except UnicodeEncodeError:
            return "Must not contain unpaired UTF-16 surrogates."
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "Must contain only finite numbers."
    if isinstance(value, int) and not -(2**63) <= value < 2**64:  # what orjson encodes
        return "Must contain only integers of at most 64 bits."
    if isinstance(value, (dict, list)):
        if depth > max_depth:
            return f"Must be nested at most {max_depth} levels deep."
        items: list[object] = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        for item in items:
            problem = json_storable_problem(item, max_depth=max_depth, depth=depth + 1)
            if problem:
                return problem
    return None


def jsonb_object_fits(value: dict[str, Any], *, max_bytes: int, max_depth: int) -> bool:
    return json_storable_problem(value, max_depth=max_depth) is None and len(json.dumps(value)) <= max_bytes


class JsonbObjectField(serializers.DictField):
    """A JSON object stored as jsonb (see the module's docstring)."""

    def __init__(self, *, max_bytes: int, max_depth: int, **kwargs: Any) -> None:
        self.max_bytes, self.max_depth = max_bytes, max_depth
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        problem = json_storable_problem(value, max_depth=self.max_depth)
        if problem:
            raise serializers.ValidationError(problem)
        if len(json.dumps(value)) > self.max_bytes:
            raise serializers.ValidationError(f"Must be at most {self.max_bytes} bytes of JSON.")
        return value


def recorded_at_validate(value: dt.datetime, *, now: dt.datetime | None = None) -> dt.datetime:
    """Device times must carry an offset and fall inside the accepted window."""
    if timezone.is_naive(value):
        raise serializers.ValidationError("Must include a UTC offset (ISO 8601, e.g. 2026-11-25T12:00:00-03:00).")
    offset = value.utcoffset()
    assert offset is not None  # an aware datetime has one
    # Every real time zone is within these, in whole minutes; PostgreSQL refuses some others.
    if offset % dt.timedelta(minutes=1) or not -MAX_OFFSET_WEST <= offset <= MAX_OFFSET_EAST:
        raise serializers.ValidationError("Must have a UTC offset in whole minutes, from -12:00 to +14:00.")
    now = now or timezone.now()
    rules = settings.TRACKING
    if value > now + dt.timedelta(seconds=rules["MAX_FUTURE_S"]):
        raise serializers.ValidationError(f"Is more than {rules['MAX_FUTURE_S']} s in the future.")
    if value < now - dt.timedelta(seconds=rules["MAX_AGE_S"]):
        raise serializers.ValidationError(f"Is more than {rules['MAX_AGE_S']} s old.")
    return value


class RecordedAtField(serializers.DateTimeField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("default_timezone", None)
        super().__init__(**kwargs)

    def enforce_timezone(self, value: dt.datetime) -> dt.datetime:
        # Keep the offset the device sent; naive values are rejected by the validator.
        return value

    def to_internal_value(self, value: Any) -> dt.datetime:
        return recorded_at_validate(super().to_internal_value(value))


class PointInputSerializer(serializers.Serializer[dict[str, Any]]):
    lat = FiniteFloatField(min_value=-90, max_value=90)
    lon = FiniteFloatField(min_value=-180, max_value=180)


class EventLocationInputSerializer(PointInputSerializer):
    accuracy_m = FiniteFloatField(min_value=0, max_value=100_000, required=False, allow_null=True)


class TextField(serializers.CharField):
    """JSON text only. DRF's CharField turns a number into text: a username sent as 12345
    would log in as the user "12345" while the throttles, which read the request as sent,
    saw no username."""

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
