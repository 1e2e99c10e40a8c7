"""The warehouse's models (warehouse/, dbt) on one small, hand-made day: today's nine
metrics give the numbers they always gave, the marts theirs, and every dbt test passes.

The day, all UTC on DAY, ten days ago (the next day for the third order), morning in São
Paulo; recent, so the privacy rule (90 days, tests/warehouse/test_privacy.py) leaves it:
  order A (courier Ana): created 10:00, assigned 10:01, started 10:05, delivered 10:20;
  order B (nobody):      created 10:00, cancelled 10:03;
  order C (courier Ana): created DAY+1 09:00, assigned 09:02.
Ana's pings, all filed under order A, one step north (0.001 degree, ~110.75 m) at a time:

  ping  recorded  received  north  accuracy  to go   ETA   note
  p1    10:06:00  10:06:40  0      3         1000 m  600   same upload as p2, recorded earlier
  p2    10:06:30  10:06:40  1      8          900 m  500
  p3    10:07:00  10:09:00  2      15         800 m  400   late (120 s)
  p7    10:08:00  10:13:00  2.5    150        700 m  350   late (300 s) and out of order (p4 came first)
  p6    10:10:00  10:10:02  500    3          -      -     flagged implausible jump
  p4    10:12:00  10:12:05  3      60         250 m  100   first "arriving" (within 300 m)
  p5    10:18:00  10:18:05  4      -           50 m   20   after a 360 s gap (not active time)
Notifications of order A: "arriving" sent 10:12:06, "delivered" sent 10:20:03.
"""

from __future__ import annotations

import datetime as dt

import pytest

from orders.models import Notification, Order
from tests.support.builders import SAO_PAULO, CourierFactory, OrderFactory
from tests.warehouse.conftest import ROOT, SCHEMA, dbt, rows, stored_pings_insert

# dbt runs as a process of its own.
pytestmark = pytest.mark.processes

DAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=10)
# One 0.001-degree step along the meridian at Sao Paulo's latitude, on the WGS84 spheroid.
STEP_M = 110.75


def at(hhmmss: str, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmmss), tzinfo=dt.UTC)


def pings_insert(*, courier_id, order_id, pings: list[tuple]) -> None:
    """Pings as (recorded, received, steps north, accuracy, distance, eta, suspect)."""
    stored_pings_insert([
        {"recorded_at": recorded, "received_at": received, "courier_id": courier_id, "order_id": order_id,
         "lat": SAO_PAULO[0] + north / 1000, "lon": SAO_PAULO[1], "accuracy_m": accuracy,
         "distance_to_destination_m": distance, "eta_seconds": eta, "suspect_reason": suspect}
        for recorded, received, north, accuracy, distance, eta, suspect in pings
    ])  # fmt: skip


def day_insert() -> dict:
    ana = CourierFactory(name="Ana Souza")
    a = OrderFactory(courier=ana, status="delivered")
    b = OrderFactory(status="cancelled")
    c = OrderFactory(courier=ana, status="assigned")
    Order.objects.filter(pk=a.pk).update(
        created_at=at("10:00:00"), assigned_at=at("10:01:00"), started_at=at("10:05:00"), delivered_at=at("10:20:00")
    )
    Order.objects.filter(pk=b.pk).update(created_at=at("10:00:00"), cancelled_at=at("10:03:00"))
    next_day = DAY + dt.timedelta(days=1)
    Order.objects.filter(pk=c.pk).update(created_at=at("09:00:00", next_day), assigned_at=at("09:02:00", next_day))
    Notification.objects.create(order=a, kind="arriving", status="sent", sent_at=at("10:12:06"))
    Notification.objects.create(order=a, kind="delivered", status="sent", sent_at=at("10:20:03"))
    pings_insert(
        courier_id=ana.id,
        order_id=a.id,
        pings=[
            # recorded, received, steps north, accuracy, distance, eta, suspect
            (at("10:06:00"), at("10:06:40"), 0, 3, 1000, 600, None),
            (at("10:06:30"), at("10:06:40"), 1, 8, 900, 500, None),
            (at("10:07:00"), at("10:09:00"), 2, 15, 800, 400, None),
            (at("10:08:00"), at("10:13:00"), 2.5, 150, 700, 350, None),
            (at("10:10:00"), at("10:10:02"), 500, 3, None, None, "implied_speed"),
            (at("10:12:00"), at("10:12:05"), 3, 60, 250, 100, None),
            (at("10:18:00"), at("10:18:05"), 4, None, 50, 20, None),
        ],
    )
    return {"ana": ana, "a": a, "b": b, "c": c}


@pytest.fixture
def day(models_schema_dropped):
    """The hand-made day, committed, and every model built on it with every dbt test run."""
    day = day_insert()
    dbt("build")
    return day


def test_todays_nine_metrics_give_the_same_numbers_on_the_hand_made_day(day):
    funnel = rows(f"SELECT * FROM {SCHEMA}.analytics_delivery_funnel_daily ORDER BY day")
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

    # The same numbers from every other metric of the day.
    (activity,) = rows(f"SELECT * FROM {SCHEMA}.analytics_courier_activity_daily")
    assert (activity["courier_id"], activity["day"], activity["pings"], activity["active_s"]) == (
        str(day["ana"].id), DAY, 6, 360.0,
    )  # fmt: skip
    # p1 -> p2 -> p3 -> p7 -> p4: three steps north; the jump to p6 and the step to p5 do not count.
    assert activity["distance_m"] == pytest.approx(3 * STEP_M, rel=1e-3)

    counts = {r["order_id"]: r for r in rows(f"SELECT * FROM {SCHEMA}.analytics_order_ping_count")}
    assert counts[str(day["a"].id)] | {"order_id": None} == {
        "order_id": None,
        "status": "delivered",
        "pings": 7,
        "trusted_pings": 6,
        "suspect_pings": 1,
        "first_ping_at": at("10:06:00"),
        "last_ping_at": at("10:18:00"),
    }
    assert counts[str(day["b"].id)]["pings"] == 0 and counts[str(day["c"].id)]["pings"] == 0

    assert rows(f"SELECT * FROM {SCHEMA}.analytics_order_longest_transit_gap") == [
        {
            "order_id": str(day["a"].id),
            "courier_id": str(day["ana"].id),
            "started_at": at("10:05:00"),
            "ended_at": at("10:20:00"),
            "pings_in_transit": 6,
            "longest_gap_s": 360.0,
            "longest_gap_started_at": at("10:12:00"),
        }
    ]

    (arriving,) = rows(f"SELECT * FROM {SCHEMA}.analytics_order_arriving_to_delivered")
    assert (arriving["order_id"], arriving["arriving_at"], arriving["arriving_to_delivered_s"]) == (
        str(day["a"].id), at("10:12:00"), 480.0,
    )  # fmt: skip

    assert rows(f"SELECT * FROM {SCHEMA}.analytics_ping_timeliness_daily") == [
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

    buckets = {
        (r["accuracy_from_m"], r["accuracy_to_m"]): (r["pings"], r["share"])
        for r in rows(f"SELECT * FROM {SCHEMA}.analytics_gps_accuracy_daily")
    }
    assert buckets == {
        (0, 5): (2, 2 / 7),
        (5, 10): (1, 1 / 7),
        (10, 20): (1, 1 / 7),
        (50, 100): (1, 1 / 7),
        (100, None): (1, 1 / 7),
        (None, None): (1, 1 / 7),
    }

    errors = [
        (r["minutes_to_go"], r["eta_seconds"], r["actual_s"], r["error_s"])
        for r in rows(f"SELECT * FROM {SCHEMA}.analytics_eta_error ORDER BY recorded_at")
    ]
    assert errors == [
        (14, 600, 840.0, -240.0),
        (13, 500, 810.0, -310.0),
        (13, 400, 780.0, -380.0),
        (12, 350, 720.0, -370.0),
        (8, 100, 480.0, -380.0),
        (2, 20, 120.0, -100.0),
    ]

    accuracy = {r.pop("minutes_to_go"): r for r in rows(f"SELECT * FROM {SCHEMA}.analytics_eta_accuracy")}
    assert accuracy[13] == {
        "etas": 2,
        "orders": 1,
        "median_error_s": -345.0,
        "median_abs_error_s": 345.0,
        "p90_abs_error_s": pytest.approx(373.0),
    }
    assert sorted(accuracy) == [2, 8, 12, 13, 14]
    assert accuracy[2]["median_error_s"] == -100.0


def test_the_marts_give_each_delivery_courier_day_and_ping_day_its_numbers(day):
    (delivery,) = rows(f"SELECT * FROM {SCHEMA}.fct_deliveries WHERE order_id = %s", [str(day["a"].id)])
    assert {k: delivery[k] for k in (
        "created_to_assigned_s", "assigned_to_started_s", "started_to_delivered_s", "created_to_delivered_s",
        "pings", "trusted_pings", "suspect_pings", "pings_in_transit", "longest_gap_s", "arriving_at",
        "arriving_to_delivered_s", "arriving_notified_at", "delivered_notified_at",
    )} == {
        "created_to_assigned_s": 60.0, "assigned_to_started_s": 240.0, "started_to_delivered_s": 900.0,
        "created_to_delivered_s": 1200.0, "pings": 7, "trusted_pings": 6, "suspect_pings": 1,
        "pings_in_transit": 6, "longest_gap_s": 360.0, "arriving_at": at("10:12:00"),
        "arriving_to_delivered_s": 480.0, "arriving_notified_at": at("10:12:06"),
        "delivered_notified_at": at("10:20:03"),
    }  # fmt: skip
    assert delivery["distance_m"] == pytest.approx(3 * STEP_M, rel=1e-3)

    (courier_day,) = rows(f"SELECT * FROM {SCHEMA}.fct_courier_days")
    assert {k: courier_day[k] for k in ("day", "pings", "active_s", "orders_delivered", "idle_s",
                                        "pings_without_accuracy")} == {
        "day": DAY, "pings": 6, "active_s": 360.0, "orders_delivered": 1, "idle_s": 0.0, "pings_without_accuracy": 1,
    }  # fmt: skip
    # São Paulo's midnight, for range filters on the raw timestamps.
    assert courier_day["day_starts_at"] == dt.datetime.combine(DAY, dt.time(3), tzinfo=dt.UTC)
    # Trusted pings' accuracies 3, 8, 15, 150 and 60 m.
    assert courier_day["mean_accuracy_m"] == pytest.approx(47.2)

    (quality,) = rows(f"SELECT * FROM {SCHEMA}.fct_ping_quality_daily")
    assert {k: quality[k] for k in ("day", "pings", "late", "out_of_order", "median_delay_s", "longest_transit_gap_s",
                                    "suspect", "suspect_implied_speed", "suspect_null_island")} == {
        "day": DAY, "pings": 7, "late": 2, "out_of_order": 1, "median_delay_s": 10.0, "longest_transit_gap_s": 360.0,
        "suspect": 1, "suspect_implied_speed": 1, "suspect_null_island": 0,
    }  # fmt: skip

    # The last ETA shown at least 5 minutes before the arrival was p4's (100 s, 480 s to go),
    # 10 minutes before p7's (350 s, 720 s to go); none was shown 15 minutes before. 07:00 in São Paulo.
    eta = rows(f"SELECT day, hour, minutes_before, eta_bucket_min, orders, mean_error_s "
               f"FROM {SCHEMA}.fct_eta_accuracy ORDER BY minutes_before")  # fmt: skip
    assert eta == [
        {"day": DAY, "hour": 7, "minutes_before": 5, "eta_bucket_min": 0, "orders": 1, "mean_error_s": -380.0},
        {"day": DAY, "hour": 7, "minutes_before": 10, "eta_bucket_min": 5, "orders": 1, "mean_error_s": -370.0},
    ]


@pytest.mark.django_db(transaction=True)
def test_an_evening_in_sao_paulo_is_one_day_though_it_spans_two_utc_days(models_schema_dropped):
    bia = CourierFactory()
    # 20:50 and 22:30 in São Paulo on DAY: 23:50 and 01:30 UTC, two UTC days.
    next_day = DAY + dt.timedelta(days=1)
    pings_insert(courier_id=bia.id, order_id=None, pings=[
        (at("23:50:00"), at("23:50:05"), 0, 5, None, None, None),
        (at("01:30:00", next_day), at("01:30:05", next_day), 1, 5, None, None, None),
    ])  # fmt: skip
    dbt("build")
    assert [(r["day"], r["pings"]) for r in rows(f"SELECT day, pings FROM {SCHEMA}.fct_courier_days")] == [(DAY, 2)]
    assert [
        (r["day"], r["pings"]) for r in rows(f"SELECT day, pings FROM {SCHEMA}.analytics_ping_timeliness_daily")
    ] == [(DAY, 2)]


def test_a_daily_run_rebuilds_the_last_days_and_reads_no_older_history(day):
    ana = day["ana"]
    # A late ping of the same day (within the lookback) and one recorded 30 days earlier (the
    # service refuses pings over 7 days old: only a full refresh rebuilds such a day).
    pings_insert(courier_id=ana.id, order_id=day["a"].id, pings=[
        (at("10:19:00"), at("10:25:00"), 4.5, 5, 10, 5, None),
        (at("10:00:00", DAY - dt.timedelta(days=30)), at("10:00:05"), 0, 5, None, None, None),
    ])  # fmt: skip
    dbt("run", "--select", "fct_courier_days")
    days = {r["day"]: r["pings"] for r in rows(f"SELECT day, pings FROM {SCHEMA}.fct_courier_days")}
    assert days == {DAY: 7}

    dbt("build", "--select", "fct_courier_days", "--full-refresh")
    days = {r["day"]: r["pings"] for r in rows(f"SELECT day, pings FROM {SCHEMA}.fct_courier_days")}
    assert days == {DAY: 7, DAY - dt.timedelta(days=30): 1}


def test_a_failing_dbt_test_fails_the_build_and_names_the_rule(day):
    # A delivered order whose delivery is recorded before its start.
    Order.objects.filter(pk=day["a"].pk).update(delivered_at=at("10:04:00"))
    done = dbt("build", check=False)
    assert done.returncode != 0
    assert "delivered_orders_have_every_step_in_order" in done.stdout
    assert "FAIL" in done.stdout


@pytest.mark.django_db(transaction=True)
def test_the_project_compiles_for_redshift_and_daily_runs_filter_on_the_raw_sort_key():
    dbt("compile", "--no-introspect", "--no-populate-cache", "--vars", "{offline_compile: true}", target="redshift")
    compiled = ROOT / ".local/warehouse/target-test-redshift/compiled/ze_warehouse/models/marts"
    courier_days = (compiled / "fct_courier_days.sql").read_text()
    assert "where s.recorded_at >= convert_timezone(" in courier_days
    assert "at time zone" not in courier_days


@pytest.mark.django_db(transaction=True)
def test_a_warehouse_built_before_the_first_ping_fills_its_daily_marts_on_the_next_run(models_schema_dropped):
    # `make warehouse` on a fresh clone, before the simulator has sent anything.
    dbt("build")
    assert rows(f"SELECT count(*) AS n FROM {SCHEMA}.fct_courier_days")[0]["n"] == 0
    day_insert()
    dbt("build")
    days = rows(f"SELECT day, pings FROM {SCHEMA}.fct_courier_days")
    assert [(r["day"], r["pings"]) for r in days] == [(DAY, 6)]
    assert rows(f"SELECT pings FROM {SCHEMA}.fct_ping_quality_daily")[0]["pings"] == 7
