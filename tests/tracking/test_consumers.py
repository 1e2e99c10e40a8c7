from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client, override_settings
from django.utils import timezone

from tests.support.builders import CourierFactory, OrderFactory, order_act, ping, pings_record
from tracking.broadcasts import FLEET_GROUP, last_locations_publish, live_updates_flush, order_group
from tracking.services.ingest import ping_batch_record
from ze_tracking.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def session_of(user) -> list[tuple[bytes, bytes]]:
    """The headers of a browser logged in as `user` (call outside the event loop)."""
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if user is not None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return headers


def socket(path: str, headers=None) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=headers or session_of(None))


record = database_sync_to_async(ping_batch_record)
act = database_sync_to_async(order_act)


def run(scenario):
    # Live updates leave after commit from a publisher thread: those of the actions taken
    # before the socket connects are sent first, so the socket only hears what follows.
    assert live_updates_flush(timeout=5)
    async_to_sync(scenario)()


def test_fleet_socket_refuses_anonymous_users_and_couriers(courier):
    sessions = [session_of(None), session_of(courier.user)]

    async def scenario():
        for headers in sessions:
            connected, _ = await socket("/ws/fleet/", headers).connect()
            assert not connected

    run(scenario)


def test_fleet_socket_sends_the_state_first_then_one_compact_message_per_publish_with_only_what_moved(
    staff, courier, in_transit_order
):
    pings_record(courier, [ping(seconds_ago=60)])
    resting = CourierFactory(user__password=None)
    pings_record(resting, [ping(seconds_ago=60)])

    headers = session_of(staff)

    async def scenario():
        ws = socket("/ws/fleet/", headers)
        connected, code = await ws.connect()
        assert connected, code
        state = await ws.receive_json_from(timeout=5)
        assert state["type"] == "state"
        assert [o[0] for o in state["o"]] == [str(in_transit_order.id)]
        assert state["o"][0][1:2] + state["o"][0][4:6] == ["in_transit", str(courier.id), courier.name]
        assert {c[0]: c[5] for c in state["c"]} == {str(courier.id): courier.name, str(resting.id): resting.name}

        burst = [ping(seconds_ago=30 - i, lat=-23.56 + i * 0.0001) for i in range(10)]
        await record(courier_id=courier.id, received_at=timezone.now(), pings=burst)

        moved = await ws.receive_json_from(timeout=5)
        assert moved["type"] == "moved"
        [row] = moved["c"]  # the resting courier is not repeated, nor the name
        assert row[:3] == [str(courier.id), pytest.approx(burst[-1]["lat"]), pytest.approx(burst[-1]["lon"])]
        assert len(row) == 5
        assert [o[0] for o in moved["o"]] == [str(in_transit_order.id)]
        assert await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()

    run(scenario)


@override_settings(LIVE_UPDATE_INTERVAL_S=2)
def test_fleet_socket_gets_the_moves_of_one_interval_as_one_message_with_the_newest_position(
    staff, courier, in_transit_order
):
    headers = session_of(staff)

    async def scenario():
        ws = socket("/ws/fleet/", headers)
        assert (await ws.connect())[0]
        assert (await ws.receive_json_from(timeout=5))["type"] == "state"

        await record(courier_id=courier.id, received_at=timezone.now(), pings=[ping(seconds_ago=30, lat=-23.5600)])
        assert (await ws.receive_json_from(timeout=5))["type"] == "moved"

        # Two more batches inside the interval that follows a publish: sent together, once.
        for seconds_ago, lat in ((20, -23.5605), (10, -23.5610)):
            await record(
                courier_id=courier.id, received_at=timezone.now(), pings=[ping(seconds_ago=seconds_ago, lat=lat)]
            )
        second = await ws.receive_json_from(timeout=5)
        assert second["c"][0][1] == pytest.approx(-23.5610)
        assert await ws.receive_nothing(timeout=0.5)
        await ws.disconnect()

    run(scenario)


def test_fleet_socket_gets_every_courier_of_a_publish_in_one_message(staff):
    couriers = CourierFactory.create_batch(150, user__password=None)  # no hashing: quick
    for c in couriers:
        ping_batch_record(courier_id=c.id, received_at=timezone.now(), pings=[ping(seconds_ago=60)])
    headers = session_of(staff)

    async def scenario():
        ws = socket("/ws/fleet/", headers)
        assert (await ws.connect())[0]
        assert (await ws.receive_json_from(timeout=5))["type"] == "state"
        await database_sync_to_async(last_locations_publish)(courier_ids=[c.id for c in couriers], order_ids=[])
        moved = await ws.receive_json_from(timeout=5)
        assert {row[0] for row in moved["c"]} == {str(c.id) for c in couriers}
        await ws.disconnect()

    run(scenario)


@override_settings(FLEET_SOCKET_BEHIND_S=0.5)
def test_a_fleet_socket_that_reads_a_publish_late_gets_the_current_state_and_skips_the_backlog(
    staff, courier, in_transit_order
):
    ping_batch_record(courier_id=courier.id, received_at=timezone.now(), pings=[ping(seconds_ago=5, lat=-23.5611)])
    headers = session_of(staff)
    layer = channel_layers[DEFAULT_CHANNEL_LAYER]

    async def scenario():
        ws = socket("/ws/fleet/", headers)
        assert (await ws.connect())[0]
        assert (await ws.receive_json_from(timeout=5))["type"] == "state"
        state_read = time.time()
        # What a socket stalled for a second finds queued: publishes made since its state,
        # read later than FLEET_SOCKET_BEHIND_S after they left.
        await asyncio.sleep(1)
        for at in (state_read + 0.01, state_read + 0.02, state_read + 0.03):
            await layer.group_send(FLEET_GROUP, {"type": "fleet.moved", "at": at, "c": [["x", 0, 0, 0, 0]], "o": []})
        caught_up = await ws.receive_json_from(timeout=5)
        assert caught_up["type"] == "state"
        assert caught_up["c"][0][:2] == [str(courier.id), pytest.approx(-23.5611)]
        assert await ws.receive_nothing(timeout=0.5)  # the rest of the backlog is dropped
        await ws.disconnect()

    run(scenario)


def test_every_tracking_page_of_a_publish_gets_its_update_even_for_more_orders_than_redis_connections(db):
    # Each moved order has a group of its own (its tracking pages); a publish for more orders
    # than the channel layer's connection pool holds (redis-py: 100) must still reach all.
    orders = OrderFactory.create_batch(150)
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)

    async def scenario():
        channels = {}
        for order in orders:
            channels[order.id] = await layer.new_channel()
            await layer.group_add(order_group(order.id), channels[order.id])
        await database_sync_to_async(last_locations_publish)(courier_ids=[], order_ids=[o.id for o in orders])
        for order in orders:
            message = await asyncio.wait_for(layer.receive(channels[order.id]), timeout=5)
            assert message["type"] == "order.public" and message["state"]["status"] == order.status

    run(scenario)


def test_track_socket_refuses_unknown_codes(db):
    async def scenario():
        connected, _ = await socket("/ws/track/not-a-code/").connect()
        assert not connected

    run(scenario)


def test_track_socket_shows_position_only_in_transit_and_goes_silent_after_delivery(courier, order):
    order_act(order, courier, "assigned", seconds_ago=300, lat=-23.57, lon=-46.66)

    async def scenario():
        ws = socket(f"/ws/track/{order.tracking_code}/")
        connected, _ = await ws.connect()
        assert connected
        first = await ws.receive_json_from(timeout=5)
        assert first["status"] == "assigned" and first["location"] is None and first["courier_first_name"] == "Ana"

        await act(order, courier, "started", seconds_ago=240, lat=-23.5690, lon=-46.66)
        moving = await ws.receive_json_from(timeout=5)
        assert moving["status"] == "in_transit" and moving["location"]["lat"] == pytest.approx(-23.5690)
        assert "courier" not in moving and moving["eta_seconds"] > 0

        await act(order, courier, "delivered", seconds_ago=60, lat=-23.5615, lon=-46.6560)
        done = await ws.receive_json_from(timeout=5)
        assert done["status"] == "delivered" and done["location"] is None and done["courier_first_name"] is None

        await record(courier_id=courier.id, received_at=timezone.now(), pings=[ping(lat=-23.5614, lon=-46.6559)])
        assert await ws.receive_nothing(timeout=0.5)
        await ws.disconnect()

    run(scenario)


def test_track_socket_gets_the_status_even_when_the_action_is_older_than_the_last_ping(courier, order):
    order_act(order, courier, "assigned", seconds_ago=300, lat=-23.57, lon=-46.66)
    order_act(order, courier, "started", seconds_ago=240, lat=-23.5690, lon=-46.66)
    pings_record(courier, [ping(lat=-23.5650, lon=-46.66)])

    async def scenario():
        ws = socket(f"/ws/track/{order.tracking_code}/")
        assert (await ws.connect())[0]
        assert (await ws.receive_json_from(timeout=5))["status"] == "in_transit"

        # The app queued "delivered" offline: its device time is before the newest ping.
        await act(order, courier, "delivered", seconds_ago=30, lat=-23.5640, lon=-46.66)
        done = await ws.receive_json_from(timeout=5)
        assert done["status"] == "delivered" and done["location"] is None
        await ws.disconnect()

    run(scenario)


@pytest.mark.parametrize("revocation", ["staff_rights_removed", "logged_out", "password_changed"])
def test_fleet_socket_closes_when_its_user_loses_staff_rights_or_logs_out(staff, courier, in_transit_order, revocation):
    client = Client()
    client.force_login(staff)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"),
               (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())]  # fmt: skip

    def revoke():
        if revocation == "staff_rights_removed":
            staff.is_superuser = False
            staff.save()
        elif revocation == "logged_out":
            client.post("/accounts/logout/")
        else:
            staff.set_password("a-brand-new-pass-789")
            staff.save()

    async def scenario():
        ws = socket("/ws/fleet/", headers)
        assert (await ws.connect())[0]
        assert (await ws.receive_json_from(timeout=5))["type"] == "state"

        await database_sync_to_async(revoke)()
        await record(courier_id=courier.id, received_at=timezone.now(), pings=[ping(lat=-23.5601)])

        closed = await ws.receive_output(timeout=5)
        assert (closed["type"], closed.get("code")) == ("websocket.close", 4403), closed

    with override_settings(FLEET_SOCKET_RECHECK_S=0):
        run(scenario)


def test_track_socket_is_rate_limited_per_code_and_address(order):
    from django.test import override_settings as override

    async def scenario():
        results = []
        for _ in range(3):
            ws = WebsocketCommunicator(application, f"/ws/track/{order.tracking_code}/", headers=session_of(None))
            connected, code = await ws.connect()
            if connected:
                await ws.receive_json_from(timeout=5)
                await ws.disconnect()
                results.append("open")
            else:
                results.append(code)
        return results

    with override(THROTTLE_RATES={**settings.THROTTLE_RATES, "tracking_link_code": "2/min"}):
        assert async_to_sync(scenario)() == ["open", "open", 4429]


def test_track_socket_is_refused_while_its_throttles_cannot_count(order, silent_port):
    """Fail closed, as over HTTP: no guessing of codes while Redis is out."""
    from django.test import override_settings as override

    async def scenario():
        ws = WebsocketCommunicator(application, f"/ws/track/{order.tracking_code}/", headers=session_of(None))
        connected, code = await ws.connect()
        return connected, code

    cache = {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{silent_port}/0"}
    with override(CACHES={"default": cache}):
        assert async_to_sync(scenario)() == (False, 1013)
