"""The analytics views (tracking/sql/analytics_views.sql, created by migration
tracking 0003) on one small, hand-made day.

The day, all UTC on 2026-01-10 (2026-01-11 for the third order):
  order A (courier Ana): created 10:00, assigned 10:01, started 10:05, delivered 10:20;
  order B (nobody):      created 10:00, cancelled 10:03;
  order C (courier Ana): created 2026-01-11 09:00, assigned 09:02.
Ana's pings, all filed under order A, one step north (0.001 degree, ~110.75 m) at a time:

  ping  recorded  received  north  accuracy  to go   ETA   note
  p1    10:06:00  10:06:40  0      3         1000 m  600   same upload as p2, recorded earlier
  p2    10:06:30  10:06:40  1      8          900 m  500
  p3    10:07:00  10:09:00  2      15         800 m  400   late (120 s)
  p7    10:08:00  10:13:00  2.5    150        700 m  350   late (300 s) and out of order (p4 came first)
  p6    10:10:00  10:10:02  500    3          -      -     flagged implausible jump
  p4    10:12:00  10:12:05  3      60         250 m  100   first "arriving" (within 300 m)
  p5    10:18:00  10:18:05  4      -           50 m   20   after a 360 s gap (not active time)
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection

from tests.support.builders import SAO_PAULO, CourierFactory, OrderFactory

DAY = dt.date(2026, 1, 10)
# One 0.001-degree step along the meridian at Sao Paulo's latitude, on the WGS84 spheroid.
STEP_M = 110.75


def at(hhmmss: str, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmmss), tzinfo=dt.UTC)


def rows(sql: str, params: list | None = None) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [c.name for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture
def day(db):
    ana = CourierFactory(name="Ana Souza")
    a = OrderFactory(courier=ana, status="delivered")
    b = OrderFactory(status="cancelled")
    c = OrderFactory(courier=ana, status="assigned")
    type(a).objects.filter(pk=a.pk).update(
        created_at=at("10:00:00"), assigned_at=at("10:01:00"), started_at=at("10:05:00"), delivered_at=at("10:20:00")
    )
    type(b).objects.filter(pk=b.pk).update(created_at=at("10:00:00"), cancelled_at=at("10:03:00"))
    next_day = DAY + dt.timedelta(days=1)
    type(c).objects.filter(pk=c.pk).update(created_at=at("09:00:00", next_day), assigned_at=at("09:02:00", next_day))
    pings = [
        # recorded, received, steps north, accuracy, distance, eta, suspect
        ("10:06:00", "10:06:40", 0, 3, 1000, 600, None),
        ("10:06:30", "10:06:40", 1, 8, 900, 500, None),
        ("10:07:00", "10:09:00", 2, 15, 800, 400, None),
        ("10:08:00", "10:13:00", 2.5, 150, 700, 350, None),
        ("10:10:00", "10:10:02", 500, 3, None, None, "implied_speed"),
        ("10:12:00", "10:12:05", 3, 60, 250, 100, None),
        ("10:18:00", "10:18:05", 4, None, 50, 20, None),
    ]
    with connection.cursor() as cursor:
        for recorded, received, north, accuracy, distance, eta, suspect in pings:
            cursor.execute(
                "INSERT INTO tracking_ping (event_id, recorded_at, received_at, courier_id, order_id, lat, lon, "
                "accuracy_m, distance_to_destination_m, eta_seconds, suspect_reason) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [uuid.uuid4(), at(recorded), at(received), ana.id, a.id, SAO_PAULO[0] + north / 1000, SAO_PAULO[1],
                 accuracy, distance, eta, suspect],
            )  # fmt: skip
    return {"ana": ana, "a": a, "b": b, "c": c}


def test_funnel_counts_each_step_per_creation_day_and_the_median_time_between_steps(day):
    funnel = rows("SELECT * FROM analytics_delivery_funnel_daily ORDER BY day")
    assert funnel == [
        {
            "day": DAY,
            "created": 2,
            "assigned": 1,
            "started": 1,
            "delivered": 1,
            "cancelled": 1,
            "median_created_to_assigned_s": 60.0,
            "median_assigned_to_started_s": 240.0,
            "median_started_to_delivered_s": 900.0,
            "median_created_to_delivered_s": 1200.0,
        },
        {
            "day": DAY + dt.timedelta(days=1),
            "created": 1,
            "assigned": 1,
            "started": 0,
            "delivered": 0,
            "cancelled": 0,
            "median_created_to_assigned_s": 120.0,
            "median_assigned_to_started_s": None,
            "median_started_to_delivered_s": None,
            "median_created_to_delivered_s": None,
        },
    ]


def test_courier_activity_skips_flagged_pings_and_gaps_over_five_minutes(day):
    (activity,) = rows("SELECT * FROM analytics_courier_activity_daily")
    assert activity["courier_id"] == day["ana"].id
    assert activity["day"] == DAY
    assert activity["pings"] == 6
    # 30 + 30 + 60 + 240 s; the 360 s gap before p5 is a break.
    assert activity["active_s"] == 360.0
    # p1 -> p2 -> p3 -> p7 -> p4: three steps north; the jump to p6 and the step to p5 do not count.
    assert activity["distance_m"] == pytest.approx(3 * STEP_M, rel=1e-3)


def test_order_ping_count_counts_flagged_pings_apart_and_lists_orders_without_pings(day):
    counts = {r["order_id"]: r for r in rows("SELECT * FROM analytics_order_ping_count")}
    assert counts[day["a"].id] | {"order_id": None} == {
        "order_id": None,
        "status": "delivered",
        "pings": 7,
        "trusted_pings": 6,
        "suspect_pings": 1,
        "first_ping_at": at("10:06:00"),
        "last_ping_at": at("10:18:00"),
    }
    assert counts[day["b"].id]["pings"] == 0 and counts[day["c"].id]["pings"] == 0


def test_longest_transit_gap_counts_the_trip_bounds_and_ignores_flagged_pings(day):
    assert rows("SELECT * FROM analytics_order_longest_transit_gap") == [
        {
            "order_id": day["a"].id,
            "courier_id": day["ana"].id,
            "started_at": at("10:05:00"),
            "ended_at": at("10:20:00"),
            "pings_in_transit": 6,
            "longest_gap_s": 360.0,
            "longest_gap_started_at": at("10:12:00"),
        }
    ]


def test_arriving_is_the_first_trusted_ping_within_300_m_and_delivery_follows(day):
    (row,) = rows("SELECT * FROM analytics_order_arriving_to_delivered")
    assert (row["order_id"], row["arriving_at"], row["arriving_to_delivered_s"]) == (
        day["a"].id,
        at("10:12:00"),
        480.0,
    )


def test_late_and_out_of_order_rates_do_not_count_pings_of_one_upload_against_each_other(day):
    assert rows("SELECT * FROM analytics_ping_timeliness_daily") == [
        {
            "day": DAY,
            "pings": 7,
            "late": 2,
            "late_rate": 2 / 7,
            "out_of_order": 1,
            "out_of_order_rate": 1 / 7,
            # delays 2, 5, 5, 10, 40, 120, 300 s
            "median_delay_s": 10.0,
            "p90_delay_s": pytest.approx(192.0),
        }
    ]


def test_gps_accuracy_distribution_buckets_every_ping_of_the_day(day):
    buckets = {
        (r["accuracy_from_m"], r["accuracy_to_m"]): (r["pings"], r["share"])
        for r in rows("SELECT * FROM analytics_gps_accuracy_daily")
    }
    assert buckets == {
        (0, 5): (2, 2 / 7),
        (5, 10): (1, 1 / 7),
        (10, 20): (1, 1 / 7),
        (50, 100): (1, 1 / 7),
        (100, None): (1, 1 / 7),
        (None, None): (1, 1 / 7),
    }


def test_eta_error_is_measured_against_the_delivery_for_every_trusted_ping_of_the_trip(day):
    errors = [
        (r["minutes_to_go"], r["eta_seconds"], r["actual_s"], r["error_s"])
        for r in rows("SELECT * FROM analytics_eta_error ORDER BY recorded_at")
    ]
    assert errors == [
        (14, 600, 840.0, -240.0),
        (13, 500, 810.0, -310.0),
        (13, 400, 780.0, -380.0),
        (12, 350, 720.0, -370.0),
        (8, 100, 480.0, -380.0),
        (2, 20, 120.0, -100.0),
    ]


def test_eta_accuracy_gives_median_and_p90_by_minutes_to_go(day):
    accuracy = {r.pop("minutes_to_go"): r for r in rows("SELECT * FROM analytics_eta_accuracy")}
    assert accuracy[13] == {
        "etas": 2,
        "orders": 1,
        "median_error_s": -345.0,
        "median_abs_error_s": 345.0,
        "p90_abs_error_s": pytest.approx(373.0),
    }
    assert sorted(accuracy) == [2, 8, 12, 13, 14]
    assert accuracy[2]["median_error_s"] == -100.0


ANALYTICS_VIEWS = {
    "analytics_delivery_funnel_daily",
    "analytics_courier_activity_daily",
    "analytics_order_ping_count",
    "analytics_order_longest_transit_gap",
    "analytics_order_arriving_to_delivered",
    "analytics_ping_timeliness_daily",
    "analytics_gps_accuracy_daily",
    "analytics_eta_error",
    "analytics_eta_accuracy",
}


def views_present() -> set[str]:
    return {r["viewname"] for r in rows("SELECT viewname FROM pg_views WHERE viewname LIKE 'analytics%%'")}


@pytest.mark.django_db(transaction=True)
def test_the_views_migration_creates_every_view_and_its_reverse_drops_them():
    from django.core.management import call_command

    assert views_present() == ANALYTICS_VIEWS
    try:
        call_command("migrate", "tracking", "0003", verbosity=0)
        assert views_present() == set()
    finally:
        call_command("migrate", "tracking", verbosity=0)
    assert views_present() == ANALYTICS_VIEWS
