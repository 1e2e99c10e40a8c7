from __future__ import annotations

import datetime as dt
import json

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from tests.support.builders import OrderFactory, ping
from tracking.models import CourierLastLocation, OrderLastLocation, Ping

URL = "/api/v1/locations"


def post(api, pings):
    return api.post(URL, {"pings": pings}, format="json")


def stored(event_id) -> bool:
    return Ping.objects.filter(event_id=event_id).exists()


def test_valid_batch_is_accepted_stored_and_moves_the_order_last_location(courier_api, in_transit_order):
    pings = [ping(seconds_ago=30 - i, lat=-23.55 - i * 0.0001, lon=-46.64) for i in range(20)]

    response = post(courier_api, pings)

    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 20, "rejected": []}
    assert Ping.objects.count() == 20
    last = OrderLastLocation.objects.get(order=in_transit_order)
    assert last.location.y == pytest.approx(pings[-1]["lat"])
    assert last.recorded_at == dt.datetime.fromisoformat(pings[-1]["recorded_at"])
    assert last.distance_to_destination_m > 0 and last.eta_seconds > 0


def test_mixed_batch_stores_the_good_pings_and_lists_each_bad_one_with_its_reason(courier_api, courier):
    good = ping()
    naive_time = ping(recorded_at=timezone.now().replace(tzinfo=None).isoformat())
    bad = [
        ping(lat=91),
        ping(lon=-180.5),
        ping(recorded_at=(timezone.now() + dt.timedelta(minutes=6)).isoformat()),
        ping(seconds_ago=8 * 24 * 3600),
        naive_time,
        ping(heading_deg=360),
        ping(accuracy_m=-1),
        ping(lat="NaN"),
        {"lat": 1},
        "not an object",
    ]

    response = post(courier_api, [good, *bad])

    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == list(range(1, 11))
    by_index = {r["index"]: r for r in body["rejected"]}
    assert "lat" in by_index[1]["errors"] and "lon" in by_index[2]["errors"]
    assert "future" in by_index[3]["errors"]["recorded_at"][0]
    assert "old" in by_index[4]["errors"]["recorded_at"][0]
    assert "offset" in by_index[5]["errors"]["recorded_at"][0]
    assert "heading_deg" in by_index[6]["errors"] and "accuracy_m" in by_index[7]["errors"]
    assert "lat" in by_index[8]["errors"]
    assert {"event_id", "recorded_at", "lon"} <= set(by_index[9]["errors"])
    assert by_index[1]["event_id"] == bad[0]["event_id"]
    assert stored(good["event_id"])
    assert Ping.objects.count() == 1


def test_batch_with_no_valid_ping_is_400_with_the_same_shape(courier_api):
    response = post(courier_api, [ping(lat=100), ping(lon=200)])

    assert response.status_code == 400
    assert response.json()["accepted"] == 0
    assert [r["index"] for r in response.json()["rejected"]] == [0, 1]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"pings": {}}',
        b'{"pings": []}',
        b'{"other": 1}',
    ],
)
def test_malformed_or_misshapen_body_is_400(courier_api, body):
    response = courier_api.post(URL, body, content_type="application/json")

    assert response.status_code == 400


def test_more_than_500_pings_is_400(courier_api):
    response = post(courier_api, [ping() for _ in range(501)])

    assert response.status_code == 400
    assert "pings" in response.json()


def test_a_batch_longer_than_tracking_max_batch_pings_is_400(courier_api):
    with override_settings(TRACKING={**settings.TRACKING, "MAX_BATCH_PINGS": 3}):
        too_long = post(courier_api, [ping(seconds_ago=i + 1) for i in range(4)])
        at_the_limit = post(courier_api, [ping(seconds_ago=i + 1) for i in range(3)])

    assert too_long.status_code == 400
    assert "pings" in too_long.json()
    assert at_the_limit.status_code == 202


def test_body_over_one_mebibyte_is_413(courier_api):
    padding = "x" * (1024 * 1024)
    response = courier_api.post(
        URL, json.dumps({"pings": [ping(attributes={"pad": padding})]}), content_type="application/json"
    )

    assert response.status_code == 413


def test_accepted_pings_too_big_for_one_message_are_413_and_not_queued(courier_api, settings):
    settings.TRACKING = {**settings.TRACKING, "MAX_TASK_PAYLOAD_BYTES": 2000}

    response = post(courier_api, [ping(attributes={"note": "y" * 200}) for _ in range(10)])

    assert response.status_code == 413
    assert "fewer pings" in response.json()["detail"]


def test_missing_or_wrong_token_is_401(anonymous_api):
    assert post(anonymous_api, [ping()]).status_code == 401
    anonymous_api.credentials(HTTP_AUTHORIZATION="Token nope")
    assert post(anonymous_api, [ping()]).status_code == 401


def test_staff_who_is_not_a_courier_gets_403(staff_api):
    assert post(staff_api, [ping()]).status_code == 403


def test_resent_ping_counts_as_accepted_and_is_stored_once(courier_api):
    first = ping()

    assert post(courier_api, [first, first]).json()["accepted"] == 2
    assert post(courier_api, [first]).status_code == 202
    marker = ping()
    post(courier_api, [marker])

    assert stored(marker["event_id"])
    assert Ping.objects.filter(event_id=first["event_id"]).count() == 1


def test_two_couriers_sending_the_same_event_id_at_the_same_instant_are_both_stored(
    courier_api, other_courier_api, courier, other_courier
):
    shared = ping()

    assert post(courier_api, [shared]).status_code == 202
    assert post(other_courier_api, [shared]).status_code == 202

    owners = set(Ping.objects.filter(event_id=shared["event_id"]).values_list("courier_id", flat=True))
    assert owners == {courier.id, other_courier.id}


def test_one_event_id_at_two_instants_in_one_request_keeps_the_first_and_rejects_the_other(courier_api):
    first = ping(seconds_ago=20)
    second = {**ping(seconds_ago=10), "event_id": first["event_id"]}

    body = post(courier_api, [first, second]).json()

    assert body["accepted"] == 1
    assert [(r["index"], r["event_id"], list(r["errors"])) for r in body["rejected"]] == [
        (1, first["event_id"], ["event_id"])
    ]
    assert "index 0" in body["rejected"][0]["errors"]["event_id"][0]
    assert list(Ping.objects.filter(event_id=first["event_id"]).values_list("recorded_at", flat=True)) == [
        dt.datetime.fromisoformat(first["recorded_at"])
    ]


def test_resend_with_time_in_milliseconds_is_stored_once(courier_api):
    sent = ping(recorded_at=(timezone.now() - dt.timedelta(seconds=5)).replace(microsecond=123456).isoformat())
    # The same event resent with its device time cut to milliseconds: another instant, by 456 µs.
    resent = {**sent, "recorded_at": sent["recorded_at"].replace(".123456", ".123")}

    assert post(courier_api, [sent]).status_code == 202
    assert post(courier_api, [resent]).status_code == 202

    assert list(Ping.objects.filter(event_id=sent["event_id"]).values_list("recorded_at", flat=True)) == [
        dt.datetime.fromisoformat(sent["recorded_at"])
    ]


def test_resend_with_a_corrected_clock_on_another_day_is_stored_once(courier_api):
    midnight = timezone.now().astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    sent = ping(recorded_at=(midnight - dt.timedelta(seconds=30)).isoformat())
    # The device's clock was 1 minute slow: the resend carries the corrected time, past midnight
    # (another daily partition), still within the future the API accepts.
    resent = {**sent, "recorded_at": (midnight + dt.timedelta(seconds=30)).isoformat()}

    assert post(courier_api, [sent]).status_code == 202
    assert post(courier_api, [resent]).status_code == 202

    assert Ping.objects.filter(event_id=sent["event_id"]).count() == 1


def test_a_resend_with_another_time_does_not_move_the_last_location(courier_api, courier, in_transit_order):
    sent = ping(seconds_ago=60, lat=-23.5600)
    resent = {**sent, "recorded_at": (timezone.now() - dt.timedelta(seconds=5)).isoformat()}

    post(courier_api, [sent])
    post(courier_api, [resent])

    last = OrderLastLocation.objects.get(order=in_transit_order)
    assert last.recorded_at == dt.datetime.fromisoformat(sent["recorded_at"])
    assert CourierLastLocation.objects.get(courier=courier).recorded_at == last.recorded_at


def test_older_ping_does_not_move_last_location_back(courier_api, courier, in_transit_order):
    newer = ping(seconds_ago=10, lat=-23.5600)
    older = ping(seconds_ago=60, lat=-23.5650)

    post(courier_api, [newer])
    assert stored(newer["event_id"])
    post(courier_api, [older])
    assert stored(older["event_id"])

    assert OrderLastLocation.objects.get(order=in_transit_order).location.y == pytest.approx(-23.5600)
    assert CourierLastLocation.objects.get(courier=courier).location.y == pytest.approx(-23.5600)


def test_out_of_order_pings_in_one_batch_leave_the_newest_as_last_location(courier_api, courier):
    pings = [ping(seconds_ago=5, lat=-23.500), ping(seconds_ago=50, lat=-23.501), ping(seconds_ago=20, lat=-23.502)]

    post(courier_api, pings)

    assert Ping.objects.count() == 3
    assert CourierLastLocation.objects.get(courier=courier).location.y == pytest.approx(-23.500)


def test_courier_cannot_ping_for_another_couriers_order(courier_api, other_courier):
    theirs = OrderFactory(courier=other_courier, status="in_transit", assigned_at=timezone.now())

    response = post(courier_api, [ping(order_id=str(theirs.id))])

    assert response.status_code == 400
    assert "order_id" in response.json()["rejected"][0]["errors"]
    assert not OrderLastLocation.objects.filter(order=theirs).exists()


def test_ping_naming_a_finished_order_is_rejected(courier_api, courier):
    delivered = OrderFactory(courier=courier, status="delivered")

    response = post(courier_api, [ping(order_id=str(delivered.id))])

    assert response.status_code == 400


def test_ping_without_active_order_lands_on_the_courier_trail(courier_api, courier):
    p = ping()

    post(courier_api, [p])

    assert stored(p["event_id"])
    stored_ping = Ping.objects.get(event_id=p["event_id"])
    assert stored_ping.courier_id == courier.id and stored_ping.order_id is None
    assert CourierLastLocation.objects.get(courier=courier).recorded_at == dt.datetime.fromisoformat(p["recorded_at"])


def test_implausible_jump_is_stored_flagged_and_does_not_move_last_location(courier_api, courier):
    here = ping(seconds_ago=20, lat=-23.5600, lon=-46.6500)
    # 100 km in 10 seconds
    there = ping(seconds_ago=10, lat=-22.6600, lon=-46.6500)

    post(courier_api, [here])
    assert stored(here["event_id"])
    post(courier_api, [there])
    assert stored(there["event_id"])

    assert Ping.objects.get(event_id=there["event_id"]).suspect_reason == "implied_speed"
    assert CourierLastLocation.objects.get(courier=courier).location.y == pytest.approx(-23.5600)


def test_unknown_attributes_are_kept(courier_api):
    p = ping(attributes={"battery": 0.42, "network": "4g"})

    post(courier_api, [p])

    assert stored(p["event_id"])
    assert Ping.objects.get(event_id=p["event_id"]).attributes == {"battery": 0.42, "network": "4g"}


def test_ping_for_a_named_order_is_filed_under_it(courier_api, courier, in_transit_order):
    OrderFactory(courier=courier, status="assigned", assigned_at=timezone.now())
    p = ping(order_id=str(in_transit_order.id))

    post(courier_api, [p])

    assert stored(p["event_id"])
    assert Ping.objects.get(event_id=p["event_id"]).order_id == in_transit_order.id


def test_event_ids_are_uuids(courier_api):
    response = post(courier_api, [ping(event_id="123")])

    assert response.status_code == 400
    assert "event_id" in response.json()["rejected"][0]["errors"]


def test_attributes_with_nul_characters_or_over_the_size_limit_are_rejected_per_ping(courier_api):
    response = post(
        courier_api,
        [ping(attributes={"note": "a\u0000b"}), ping(attributes={"blob": "x" * 5000}), ping(attributes={"ok": 1})],
    )

    assert response.status_code == 202 and response.json()["accepted"] == 1
    errors = {r["index"]: r["errors"] for r in response.json()["rejected"]}
    assert "NUL" in errors[0]["attributes"][0] and "bytes" in errors[1]["attributes"][0]


def test_json_nested_too_deeply_is_400_not_500(courier_api, anonymous_api):
    deep = "[" * 50_000 + "]" * 50_000

    assert courier_api.post(URL, '{"pings": ' + deep + "}", content_type="application/json").status_code == 400
    token = anonymous_api.post("/api/v1/auth/token", '{"username": ' + deep + "}", content_type="application/json")
    assert token.status_code == 400


def test_numbers_outside_what_a_ping_can_store_are_rejected_per_ping(courier_api):
    bad = [
        ping(accuracy_m=1e39),  # overflows single precision: the batch insert would fail
        ping(speed_mps=1e39),
        ping(accuracy_m=100_001),  # not a GPS fix
        ping(speed_mps=1001),  # faster than any courier
    ]
    good = ping()

    response = post(courier_api, [*bad, good])

    assert response.status_code == 202, response.content
    errors = {r["index"]: r["errors"] for r in response.json()["rejected"]}
    assert set(errors) == {0, 1, 2, 3}
    assert "accuracy_m" in errors[0] and "speed_mps" in errors[1]
    assert "accuracy_m" in errors[2] and "speed_mps" in errors[3]
    assert stored(good["event_id"]) and Ping.objects.count() == 1


def test_numbers_too_small_for_single_precision_are_stored_as_zero(courier_api):
    p = ping(accuracy_m=1e-50, speed_mps=1e-40, heading_deg=5e-324)

    response = post(courier_api, [p])

    assert response.status_code == 202, response.content
    assert Ping.objects.filter(event_id=p["event_id"]).values_list("accuracy_m", "speed_mps", "heading_deg").get() == (
        0,
        0,
        0,
    )


def test_unpaired_surrogates_in_attributes_are_rejected_per_ping(courier_api):
    body = (
        '{"pings": [' + json.dumps(ping(attributes={"k": "\ud800"})) + ", "
        + json.dumps(ping(attributes={"\udfff": 1})) + ", "
        + json.dumps(ping(attributes={"list": [{"deep": "x\ud83d"}]})) + ", "
        + json.dumps(ping(attributes={"emoji": "\U0001f600"})) + "]}"
    )  # fmt: skip

    response = courier_api.post(URL, body, content_type="application/json")

    assert response.status_code == 202, response.content
    errors = {r["index"]: r["errors"] for r in response.json()["rejected"]}
    assert set(errors) == {0, 1, 2}
    assert all("surrogate" in e["attributes"][0] for e in errors.values())
    assert Ping.objects.get().attributes == {"emoji": "\U0001f600"}


def test_attributes_nested_deeper_than_the_limit_are_rejected_per_ping(courier_api):
    nested: dict = {"v": 1}
    for _ in range(20):
        nested = {"n": nested}

    response = post(courier_api, [ping(attributes=nested), ping(attributes={"a": {"b": [1, {"c": 2}]}})])

    assert response.status_code == 202, response.content
    assert [r["index"] for r in response.json()["rejected"]] == [0]
    assert "deep" in response.json()["rejected"][0]["errors"]["attributes"][0]


def test_an_unprintable_event_id_is_rejected_without_being_echoed(courier_api):
    body = '{"pings": [{"event_id": "\\ud800", "lat": 1, "lon": 1}]}'

    response = courier_api.post(URL, body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert "event_id" in response.json()["rejected"][0]["errors"]


def test_device_times_with_offsets_no_time_zone_has_are_rejected_per_ping(courier_api):
    now = timezone.now()
    odd = [
        now.astimezone(dt.timezone(dt.timedelta(seconds=1, microseconds=1))).isoformat(),
        now.astimezone(dt.timezone(dt.timedelta(hours=20))).isoformat(),
    ]
    good = ping(recorded_at=now.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=45))).isoformat())

    response = post(courier_api, [*(ping(recorded_at=at) for at in odd), good])

    assert response.status_code == 202, response.content
    assert [(r["index"], list(r["errors"])) for r in response.json()["rejected"]] == [
        (0, ["recorded_at"]),
        (1, ["recorded_at"]),
    ]
    assert stored(good["event_id"])
