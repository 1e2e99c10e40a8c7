"""The position filter, through the real worker path (`ping_batch_record` in process, on
PostGIS): one implausible fix is one flagged fix, wherever it sits, and the last location is
always the newest real fix."""

from __future__ import annotations

import datetime as dt
import math
import os
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support.builders import SAO_PAULO, CourierFactory, ping, pings_record
from tracking.geo import EARTH_RADIUS_M
from tracking.models import CourierLastLocation, Ping


def offset(lat: float, lon: float, *, metres: float, bearing_deg: float) -> tuple[float, float]:
    """The point `metres` away from (lat, lon) along `bearing_deg` (flat-earth, fine under 500 km here)."""
    b = math.radians(bearing_deg)
    dlat = metres * math.cos(b) / EARTH_RADIUS_M
    dlon = metres * math.sin(b) / (EARTH_RADIUS_M * math.cos(math.radians(lat)))
    return lat + math.degrees(dlat), lon + math.degrees(dlon)


def fix(at: dt.datetime, lat: float, lon: float, accuracy_m: float = 5.0) -> dict:
    return ping(at=at, lat=lat, lon=lon, accuracy_m=accuracy_m)


def drive(start: dt.datetime, n: int, *, every_s: float = 5, lat: float = SAO_PAULO[0], lon: float = SAO_PAULO[1]):
    """n fixes of a courier heading north at 8 m/s."""
    return [fix(start + dt.timedelta(seconds=i * every_s), *offset(lat, lon, metres=8 * every_s * i, bearing_deg=0))
            for i in range(n)]  # fmt: skip


def flags(pings: list[dict]) -> list[str | None]:
    rows = Ping.objects.filter(event_id__in=[p["event_id"] for p in pings])
    by_id = dict(rows.values_list("event_id", "suspect_reason"))
    return [by_id[uuid.UUID(p["event_id"])] for p in pings]


def last_location(courier) -> tuple[dt.datetime, float, float]:
    row = CourierLastLocation.objects.get(courier=courier)
    return row.recorded_at, row.location.y, row.location.x


def at(p: dict) -> tuple[dt.datetime, float, float]:
    return dt.datetime.fromisoformat(p["recorded_at"]), pytest.approx(p["lat"]), pytest.approx(p["lon"])


@pytest.mark.django_db
def test_a_wrong_first_fix_is_flagged_and_the_consistent_fixes_take_over(courier):
    now = timezone.now()
    wild = fix(now - dt.timedelta(seconds=60), *offset(*SAO_PAULO, metres=40_000, bearing_deg=90))
    real = drive(now - dt.timedelta(seconds=50), 4)

    pings_record(courier, [wild])
    pings_record(courier, real)

    assert flags(real) == [None] * 4
    assert flags([wild]) == ["implied_speed"]
    assert last_location(courier) == at(real[-1])


@pytest.mark.django_db
def test_a_wrong_first_fix_loses_to_real_fixes_sent_one_by_one(courier):
    now = timezone.now()
    wild = fix(now - dt.timedelta(seconds=60), *offset(*SAO_PAULO, metres=40_000, bearing_deg=90))
    real = drive(now - dt.timedelta(seconds=50), 4)

    pings_record(courier, [wild])
    for p in real:
        pings_record(courier, [p])

    assert flags(real) == [None] * 4
    assert flags([wild]) == ["implied_speed"]
    assert last_location(courier) == at(real[-1])


@pytest.mark.django_db
def test_a_wild_fix_after_an_offline_gap_is_flagged(courier):
    now = timezone.now()
    before = drive(now - dt.timedelta(hours=3), 3)
    # Two hours offline: 100 km in two hours is a plausible speed, but the fixes after it disagree.
    wild = fix(now - dt.timedelta(seconds=60), *offset(*SAO_PAULO, metres=100_000, bearing_deg=200))
    after = drive(now - dt.timedelta(seconds=55), 4, lat=SAO_PAULO[0] + 0.05)

    pings_record(courier, before)
    pings_record(courier, [wild, *after[:1]])
    pings_record(courier, after[1:])

    assert flags([wild]) == ["implied_speed"]
    assert flags(before + after) == [None] * 7
    assert last_location(courier) == at(after[-1])


@pytest.mark.django_db
@pytest.mark.parametrize("arrival", ["together", "wild_first", "real_first"])
def test_real_fix_agreeing_with_history_beats_a_wild_one_after_a_gap(courier, arrival):
    now = timezone.now()
    history = drive(now - dt.timedelta(minutes=20), 3)
    # 15 minutes offline. The real fix is 3 km on (3 m/s over the gap); the wild one 45 km
    # away (50 m/s over the gap: no courier's average across a quarter of an hour).
    real = fix(now - dt.timedelta(seconds=290), *offset(history[-1]["lat"], history[-1]["lon"], metres=3_000,
                                                         bearing_deg=10))  # fmt: skip
    wild = fix(now - dt.timedelta(seconds=295), *offset(*SAO_PAULO, metres=45_000, bearing_deg=120))

    pings_record(courier, history)
    if arrival == "together":
        pings_record(courier, [wild, real])
    else:
        for p in [wild, real] if arrival == "wild_first" else [real, wild]:
            pings_record(courier, [p])

    assert flags([wild, real]) == ["implied_speed", None]
    assert flags(history) == [None] * 3
    assert last_location(courier) == at(real)


@pytest.mark.django_db
def test_a_late_pair_before_a_gap_is_judged_by_the_history_after_it(courier):
    """The same rule backwards in time: a phone that sends a queued pair after newer fixes."""
    now = timezone.now()
    later = drive(now - dt.timedelta(minutes=5), 3)
    wild = fix(now - dt.timedelta(minutes=20), *offset(*SAO_PAULO, metres=45_000, bearing_deg=300))
    real = fix(now - dt.timedelta(minutes=20, seconds=-5), *offset(*SAO_PAULO, metres=3_000, bearing_deg=190))

    pings_record(courier, later)
    pings_record(courier, [wild, real])

    assert flags([wild, real]) == ["implied_speed", None]
    assert flags(later) == [None] * 3
    assert last_location(courier) == at(later[-1])


@pytest.mark.django_db
def test_a_days_old_ping_does_not_let_a_wild_fix_in_the_same_batch_through(courier):
    now = timezone.now()
    real = drive(now - dt.timedelta(seconds=100), 5)
    days_old = fix(now - dt.timedelta(days=3), -23.40, -46.50)
    wild = fix(now - dt.timedelta(seconds=60), *offset(*SAO_PAULO, metres=300_000, bearing_deg=45))
    later = drive(now - dt.timedelta(seconds=50), 3, lat=real[-1]["lat"])

    pings_record(courier, real)
    pings_record(courier, [days_old, wild])
    pings_record(courier, later)

    assert flags([days_old, wild]) == [None, "implied_speed"]
    assert flags(real + later) == [None] * 8
    assert last_location(courier) == at(later[-1])


@pytest.mark.django_db
def test_a_glitch_newer_than_everything_that_arrives_first_never_stays_the_last_location(courier):
    now = timezone.now()
    real = drive(now - dt.timedelta(seconds=100), 10)
    glitch = fix(now - dt.timedelta(seconds=52), *offset(*SAO_PAULO, metres=20_000, bearing_deg=270))

    pings_record(courier, [glitch])  # the newest fix, and the first the server sees
    pings_record(courier, real[5:])
    pings_record(courier, real[:5])

    assert flags([glitch]) == ["implied_speed"]
    assert flags(real) == [None] * 10
    assert last_location(courier) == at(real[-1])


@pytest.mark.django_db
def test_a_glitch_out_of_order_across_batches_is_flagged(courier):
    now = timezone.now()
    real = drive(now - dt.timedelta(seconds=100), 20)
    # 1.5 km off, between two fixes 5 s apart, but 32 s after the newest fix stored so far.
    glitch = fix(now - dt.timedelta(seconds=47.5), *offset(real[10]["lat"], real[10]["lon"], metres=1_500,
                                                            bearing_deg=90))  # fmt: skip

    pings_record(courier, real[:5])
    pings_record(courier, [glitch])
    pings_record(courier, real[5:])

    assert flags([glitch]) == ["implied_speed"]
    assert flags(real) == [None] * 20
    assert last_location(courier) == at(real[-1])


@pytest.mark.django_db
def test_a_real_fix_overturned_then_confirmed_by_older_pings_becomes_the_last_location(courier):
    now = timezone.now()
    real = drive(now - dt.timedelta(seconds=200), 101, every_s=1)
    # 5 km off, 99.5 s after the first fix: plausible from it, contradicted by every fix near it.
    glitch = fix(now - dt.timedelta(seconds=100.5), *offset(real[99]["lat"], real[99]["lon"], metres=5_000,
                                                             bearing_deg=90))  # fmt: skip

    pings_record(courier, real[:1])
    pings_record(courier, [glitch])
    pings_record(courier, real[100:])  # one newcomer against two agreeing fixes: flagged for now
    pings_record(courier, real[1:100])  # the late pings in between settle it

    assert flags([glitch]) == ["implied_speed"]
    assert flags(real) == [None] * 101
    assert last_location(courier) == at(real[-1])


@pytest.mark.django_db
@pytest.mark.parametrize("lat, lon", [(0.0, 0.0), (0.0, -46.6), (-23.5, 0.0)])
def test_null_fixes_are_flagged_as_null_island(courier, lat, lon):
    now = timezone.now()
    real = drive(now - dt.timedelta(seconds=30), 3)
    null = fix(now - dt.timedelta(seconds=2), lat, lon)

    pings_record(courier, [null])  # even as the very first fix
    pings_record(courier, real)

    assert flags([null]) == ["null_island"]
    assert flags(real) == [None] * 3
    assert last_location(courier) == at(real[-1])


@pytest.mark.django_db
def test_a_lone_fix_that_contradicts_the_trusted_one_is_flagged(courier):
    now = timezone.now()
    here = fix(now - dt.timedelta(seconds=20), *SAO_PAULO)
    there = fix(now - dt.timedelta(seconds=10), *offset(*SAO_PAULO, metres=100_000, bearing_deg=0))

    pings_record(courier, [here])
    pings_record(courier, [there])

    assert flags([here, there]) == [None, "implied_speed"]
    assert last_location(courier) == at(here)


@pytest.mark.django_db
def test_queries_per_batch_that_overturns_a_stored_fix_do_not_grow_with_the_batch_size():
    counts = []
    for size in (3, 50, 500):
        courier = CourierFactory(user__password=None)
        now = timezone.now()
        pings_record(courier, [fix(now - dt.timedelta(seconds=600), 0.5, 0.5)])  # a wild first fix, stored trusted
        with CaptureQueriesContext(connection) as queries:
            pings_record(courier, drive(now - dt.timedelta(seconds=599), size, every_s=1))
        counts.append(len(queries))
        assert CourierLastLocation.objects.get(courier=courier).location.y != pytest.approx(0.5)

    assert counts[0] == counts[1] == counts[2]


# --- Property: real drives with glitches, in random batches -----------------------------


@st.composite
def drives(draw):
    """A realistic drive in São Paulo (speeds 0-25 m/s, heading turning smoothly, a ping every
    1-10 s, GPS noise inside the reported accuracy), sometimes with an offline gap of 11-40
    minutes after which the courier reappears where it could have driven to (a glitch there
    comes just before the first fix after it, the phone being on again), with glitches
    (jumps of 5-500 km, or 100-500 km when there is a gap, so that none agrees with the
    fixes across it, or to (0, 0)) inserted at distinct positions, the first included; cut
    into batches of random sizes (stretches of the drive, or pings in any order) that arrive
    in random order."""
    n = draw(st.integers(min_value=2, max_value=30))
    gap_at = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=n - 1)))
    lat = draw(st.floats(min_value=-23.75, max_value=-23.40))
    lon = draw(st.floats(min_value=-46.80, max_value=-46.40))
    heading = draw(st.floats(min_value=0, max_value=360))
    speed = draw(st.floats(min_value=0, max_value=25))
    t = timezone.now() - dt.timedelta(hours=1)
    real = []
    for i in range(n):
        if i == gap_at:
            gap_s = draw(st.floats(min_value=660, max_value=2400))
            t += dt.timedelta(seconds=gap_s)
            average = draw(st.floats(min_value=0, max_value=12))
            lat, lon = offset(lat, lon, metres=average * gap_s, bearing_deg=draw(st.floats(min_value=0, max_value=360)))
        accuracy = draw(st.floats(min_value=3, max_value=25))
        noise = draw(st.floats(min_value=0, max_value=accuracy))
        noisy = offset(lat, lon, metres=noise, bearing_deg=draw(st.floats(min_value=0, max_value=360)))
        real.append(fix(t, *noisy, accuracy_m=accuracy))
        step = draw(st.floats(min_value=1, max_value=10))
        speed = min(25.0, max(0.0, speed + draw(st.floats(min_value=-2.5, max_value=2.5))))
        heading += draw(st.floats(min_value=-30, max_value=30))
        lat, lon = offset(lat, lon, metres=speed * step, bearing_deg=heading)
        t += dt.timedelta(seconds=step)

    # A glitch goes in just before real fix `slot` (slot n: after the last one).
    # Edges are where the old rules broke (the first fix ever, the newest fix): drawn often.
    slots = draw(st.lists(st.one_of(st.sampled_from([0, n]), st.integers(min_value=0, max_value=n)), unique=True,
                          max_size=3))  # fmt: skip
    base_bearing = draw(st.floats(min_value=0, max_value=360))
    glitches = []
    for k, slot in enumerate(slots):
        anchor = real[min(slot, n - 1)]
        anchor_at = dt.datetime.fromisoformat(anchor["recorded_at"])
        if slot == n:
            when = anchor_at + dt.timedelta(seconds=draw(st.floats(min_value=0.5, max_value=10)))
        elif slot in (0, gap_at):  # the first fix ever, or the first after the gap
            when = anchor_at - dt.timedelta(seconds=draw(st.floats(min_value=0.5, max_value=10)))
        else:
            previous_at = dt.datetime.fromisoformat(real[slot - 1]["recorded_at"])
            when = previous_at + (anchor_at - previous_at) / 2
        if draw(st.booleans()):
            glitches.append(fix(when, 0.0, 0.0))
        else:
            # Bearings a golden angle apart: two glitches never agree with each other.
            metres = draw(st.floats(min_value=5_000 if gap_at is None else 100_000, max_value=500_000))
            glitches.append(fix(when, *offset(anchor["lat"], anchor["lon"], metres=metres,
                                               bearing_deg=base_bearing + 137.5 * k)))  # fmt: skip

    timeline = sorted(real + glitches, key=lambda p: dt.datetime.fromisoformat(p["recorded_at"]))
    if draw(st.booleans()):  # a phone that queued pings and sends them in any order
        timeline = draw(st.permutations(timeline))
    cuts = draw(st.sets(st.integers(min_value=1, max_value=len(timeline) - 1), max_size=6))
    if draw(st.booleans()):  # each glitch alone in its batch: no neighbour arrives with it
        at_index = {p["event_id"]: i for i, p in enumerate(timeline)}
        cuts |= {i for g in glitches for i in (at_index[g["event_id"]], at_index[g["event_id"]] + 1)}
        cuts &= set(range(1, len(timeline)))
    cuts = sorted(cuts)
    batches = [timeline[a:b] for a, b in zip([0, *cuts], [*cuts, len(timeline)], strict=True)]
    batches = draw(st.permutations(batches))
    return real, glitches, batches


@pytest.mark.django_db
@settings(
    max_examples=int(os.environ.get("PLAUSIBILITY_EXAMPLES", "200")),
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    # Every example runs the worker path on PostgreSQL: shrinking a failure would take
    # minutes, so a failure is reported as found.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(case=drives())
def test_any_drive_with_glitches_in_any_batch_order_keeps_the_newest_real_fix(db, case):
    real, glitches, batches = case
    # A new courier per example (examples share the test's transaction); no password to hash.
    courier = CourierFactory(user__password=None)

    for batch in batches:
        pings_record(courier, batch)

    assert [p for p, f in zip(real, flags(real), strict=True) if f] == [], "a real fix was flagged"
    assert [p for p, f in zip(glitches, flags(glitches), strict=True) if not f] == [], "a glitch was trusted"
    newest = max(real, key=lambda p: dt.datetime.fromisoformat(p["recorded_at"]))
    assert last_location(courier) == at(newest)
