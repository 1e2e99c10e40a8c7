"""The one place that publishes live updates to the Channels layer, after commit.

One group message per moved order or courier per batch (not per ping): the message carries
the newest position, so a burst of pings costs one message.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from channels.layers import get_channel_layer

from tracking.selectors import couriers_with_location, order_public_state_build, orders_with_location
from tracking.serializers import CourierLocationSerializer, OrderLocationSerializer, PublicOrderStateSerializer

logger = logging.getLogger(__name__)

FLEET_GROUP = "fleet"


def order_group(order_id) -> str:
    return f"order.{order_id}"


def orders_publish(*, order_ids: list) -> None:
    """A status change without a new position (a cancellation)."""
    last_locations_publish(courier_ids=[], order_ids=order_ids)


def last_locations_publish(*, courier_ids: list, order_ids: list) -> None:
    if not (courier_ids or order_ids):
        return
    layer = get_channel_layer()
    if layer is None:
        return
    updates = fleet_updates_build(courier_ids=courier_ids, order_ids=order_ids)
    try:
        asyncio.run_coroutine_threadsafe(_publish(layer, updates), _publisher_loop()).result(timeout=PUBLISH_TIMEOUT_S)
    except Exception:  # a live map must never fail a persisted batch
        logger.exception("live update publish failed")


def fleet_state_build() -> dict:
    """What `/ws/fleet/` sends first: active couriers and orders."""
    return {
        "couriers": CourierLocationSerializer(couriers_with_location(), many=True).data,
        "orders": OrderLocationSerializer(orders_with_location(), many=True).data,
    }


def fleet_updates_build(*, courier_ids: list, order_ids: list) -> dict:
    """The payloads for what moved: fleet entries, and each order's public state (the
    same serializers as the REST API)."""
    orders = orders_with_location(ids=order_ids) if order_ids else []
    couriers = couriers_with_location(ids=courier_ids) if courier_ids else []
    return {
        "couriers": CourierLocationSerializer(couriers, many=True).data,
        "orders": OrderLocationSerializer(orders, many=True).data,
        "public": {str(o.id): PublicOrderStateSerializer(order_public_state_build(order=o)).data for o in orders},
    }


PUBLISH_TIMEOUT_S = 5
_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, on its own thread, for all publishes. channels_redis
    keeps its connections per event loop, so `async_to_sync` (a new loop each call) would
    reconnect to Redis on every batch: ≈ 13 ms a publish against ≈ 2 ms here. Created
    lazily, so each forked worker process gets its own."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="live-updates", daemon=True).start()
        return _loop


async def _publish(layer, updates: dict) -> None:
    # Sent concurrently: each group_send is a Redis round trip or more.
    sends = [layer.group_send(FLEET_GROUP, {"type": "courier.moved", "courier": c}) for c in updates["couriers"]]
    sends += [layer.group_send(FLEET_GROUP, {"type": "order.moved", "order": o}) for o in updates["orders"]]
    sends += [
        layer.group_send(order_group(order_id), {"type": "order.public", "state": state})
        for order_id, state in updates["public"].items()
    ]
    await asyncio.gather(*sends)
