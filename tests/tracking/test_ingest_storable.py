"""Accepted means storable: whatever JSON a courier's app sends, each ping of the batch is
either rejected by its index with a message, or stored by the worker path."""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid

from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.http.serializers import tiny_to_zero
from tests.support.builders import ping
from tracking.models import Ping
from tracking.serializers import PingInputSerializer, ping_validate_fast
from ze_tracking.celery import app as celery_app

URL = "/api/v1/locations"

SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
# Text as a careless app may produce it: NUL, control characters, unpaired surrogates.
TEXT = st.text(st.characters(codec=None, categories=None, exclude_categories=()) | SURROGATES, max_size=12)
FLOATS = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [1e39, -1e39, 1e-50, 5e-324, 1e-40, 3.4028235e38, 3.5e38, 1e308, -0.0, 1e5, 100_000.0001, 1000.0001, 359.9999999]
)
NUMBERS = FLOATS | st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)


@st.composite
def recorded_at(draw) -> str | object:
    """Device times: in and out of the accepted window, any offset, any precision, naive."""
    now = timezone.now()
    at = now - draw(st.timedeltas(min_value=dt.timedelta(minutes=-10), max_value=dt.timedelta(days=8)))
    day = dt.timedelta(hours=23, minutes=59)
    offset = draw(st.timedeltas(min_value=-day, max_value=day))
    local = at.astimezone(dt.timezone(offset))
    spec = draw(st.sampled_from(["auto", "seconds", "milliseconds", "microseconds", "minutes"]))
    text = local.isoformat(timespec=spec)
    return draw(
        st.sampled_from([text, text.replace("+00:00", "Z"), local.replace(tzinfo=None).isoformat(), text + "0"]) | JSON
    )


@st.composite
def near_valid_ping(draw) -> dict:
    """A valid ping with some fields replaced by extreme or malformed values."""
    base = ping(
        seconds_ago=draw(st.floats(min_value=0, max_value=3600)),
        speed_mps=draw(st.floats(min_value=0, max_value=50)),
        heading_deg=draw(st.floats(min_value=0, max_value=359)),
        attributes=draw(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3)),
    )
    base["event_id"] = str(draw(st.uuids()))
    replacements = {
        "event_id": JSON | st.uuids().map(str) | SURROGATES,
        "recorded_at": recorded_at(),
        "lat": NUMBERS | JSON,
        "lon": NUMBERS | JSON,
        "accuracy_m": NUMBERS | st.none(),
        "speed_mps": NUMBERS | st.none(),
        "heading_deg": NUMBERS | st.none(),
        "order_id": st.none() | st.uuids().map(str) | JSON,
        "attributes": JSON,
    }
    for name in draw(st.sets(st.sampled_from(sorted(replacements)), max_size=3)):
        base[name] = draw(replacements[name])
    for name in draw(st.sets(st.sampled_from(sorted(replacements)), max_size=1)):
        base.pop(name, None)
    return base


PINGS = st.lists(near_valid_ping() | JSON, min_size=1, max_size=6)


def body_encode(pings: list) -> str | None:
    try:
        return json.dumps({"pings": pings}, allow_nan=False)
    except (ValueError, OverflowError):  # only valid JSON goes on the wire
        return None


def event_id_parse(value) -> uuid.UUID:
    return uuid.UUID(int=value) if isinstance(value, int) else uuid.UUID(value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pings=PINGS)
def test_every_ping_is_either_rejected_by_index_or_stored(courier_api, in_transit_order, pings):
    body = body_encode(pings)
    if body is None:
        return
    # Tasks already run in process here (tests/conftest.py); a worker-side failure fails the example.
    celery_app.conf.update(task_eager_propagates=True)
    try:
        # Each example in its own savepoint, rolled back: examples stay independent.
        with transaction.atomic():
            response = courier_api.post(URL, body, content_type="application/json")

            assert response.status_code in (202, 400), response.content
            result = response.json()
            rejected = {r["index"]: r["errors"] for r in result["rejected"]}
            assert result["accepted"] == len(pings) - len(rejected)
            newest_by_event: dict[uuid.UUID, dict] = {}  # a repeated event_id keeps its last copy
            for index, raw in enumerate(pings):
                if index in rejected:
                    errors = rejected[index]
                    assert errors and all(errors.values() if isinstance(errors, dict) else errors), errors
                else:
                    newest_by_event[event_id_parse(raw["event_id"])] = raw
            for event_id, raw in newest_by_event.items():
                stored = Ping.objects.get(event_id=event_id)
                # The position to the bit (float8 columns), once a tiny value is read as zero.
                assert (stored.lat, stored.lon) == (tiny_to_zero(float(raw["lat"])), tiny_to_zero(float(raw["lon"])))
                for name in ("accuracy_m", "speed_mps", "heading_deg"):
                    sent, kept = raw.get(name), getattr(stored, name)
                    if sent is None:
                        assert kept is None
                    elif name == "heading_deg":  # kept to the degree
                        assert abs(kept - sent) <= 0.5, (name, sent, kept)
                    else:
                        assert math.isclose(kept, sent, rel_tol=1e-6, abs_tol=1e-30), (name, sent, kept)
            transaction.set_rollback(True)
    finally:
        celery_app.conf.update(task_eager_propagates=False)


ACTIVE_ORDER = uuid.UUID("00000000-0000-4000-8000-000000000001")


@settings(max_examples=1000, deadline=None)
@given(raw=near_valid_ping() | JSON, order_id=st.sampled_from([ACTIVE_ORDER, None]))
def test_the_fast_validation_accepts_only_what_the_serializer_accepts_with_the_same_values(raw, order_id):
    if order_id and isinstance(raw, dict):
        raw["order_id"] = str(order_id)
    body = body_encode([raw])
    if body is None:
        return
    raw = json.loads(body)["pings"][0]  # what the parser hands over
    now = timezone.now()

    fast = ping_validate_fast(raw, active_order_ids={ACTIVE_ORDER}, now=now)

    if fast is not None:
        data = PingInputSerializer(context={"active_order_ids": {ACTIVE_ORDER}}).run_validation(raw)
        assert fast == {k: v for k, v in data.items() if v is not None and v != {}}
