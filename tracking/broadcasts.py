"""The one place that publishes live updates to the Channels layer, after commit.

One group message per publish for the fleet map, listing every courier and order that
moved, and one per moved order for its tracking page (not per ping): each carries the
newest position, so a burst of pings costs one message. Publishing never holds up the
caller: `last_locations_publish` (called after commit) hands the ids to one publisher
thread per process and returns. The thread sends at most once per
`LIVE_UPDATE_INTERVAL_S` and merges what piled up meanwhile (a courier that moved in ten
batches is read and sent once), reads the committed rows and sends: under load its cost
follows the moved couriers per interval, not the batches. After a quiet spell the first
move leaves at once. A publish that fails is logged and dropped: the next move sends the newest state
again, and the websocket views load the full state on (re)connect.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connection

from tracking.selectors import couriers_with_location, orders_with_location
from tracking.serializers import courier_fleet_row, order_fleet_row
from tracking.tracking_link import PublicOrderStateSerializer, order_public_state_build

logger = logging.getLogger(__name__)

FLEET_GROUP = "fleet"


def order_group(order_id) -> str:
    return f"order.{order_id}"


def orders_publish(*, order_ids: list) -> None:
    """A status change without a new position (a cancellation)."""
    last_locations_publish(courier_ids=[], order_ids=order_ids)


def last_locations_publish(*, courier_ids: list, order_ids: list) -> None:
    if courier_ids or order_ids:
        _publisher().submit(courier_ids=courier_ids, order_ids=order_ids)


def _fleet_rows(*, couriers, orders, with_names: bool) -> dict:
    """The fleet socket's compact form (`tracking.serializers.courier_fleet_row`): couriers
    without a position are not drawn, so not sent."""
    located = [c for c in couriers if getattr(c, "last_location", None) is not None]
    rows = [courier_fleet_row(c, with_name=with_names) for c in located]
    return {"c": rows, "o": [order_fleet_row(o) for o in orders]}


def fleet_state_build() -> dict:
    """What `/ws/fleet/` sends first, and to a socket that fell behind: active couriers and
    orders, couriers with their names."""
    return _fleet_rows(couriers=couriers_with_location(), orders=orders_with_location(), with_names=True)


def fleet_updates_build(*, courier_ids: list, order_ids: list) -> dict:
    """The payloads for what moved: the fleet's compact rows, and each order's public state
    (the same serializer as the REST API)."""
    orders = orders_with_location(ids=order_ids) if order_ids else []
    couriers = couriers_with_location(ids=courier_ids) if courier_ids else []
    # One serializer per list: a serializer copies its fields when it is made.
    public = PublicOrderStateSerializer([order_public_state_build(order=o) for o in orders], many=True).data
    return {
        "fleet": _fleet_rows(couriers=couriers, orders=orders, with_names=False),
        "public": {str(o.id): state for o, state in zip(orders, public, strict=True)},
    }


PUBLISH_TIMEOUT_S = 5
PUBLISH_CONCURRENCY = 20
IDLE_DISCONNECT_S = 1


class _Publisher:
    """One thread per process that sends the pending live updates, coalesced by id. It keeps
    one event loop for its life: channels_redis keeps its connections per event loop, so a
    new loop per publish (`async_to_sync`) would reconnect to Redis every time."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._wake = threading.Condition()
        self._courier_ids: set = set()
        self._order_ids: set = set()
        self._submitted = self._sent = 0  # submissions handed over / done with
        threading.Thread(target=self._run, name="live-updates", daemon=True).start()
        atexit.register(self.flush, timeout=2)

    def submit(self, *, courier_ids: list, order_ids: list) -> None:
        with self._wake:
            self._courier_ids.update(courier_ids)
            self._order_ids.update(order_ids)
            self._submitted += 1
            self._wake.notify_all()

    def flush(self, *, timeout: float) -> bool:
        """Wait until what was submitted so far has been sent (or dropped on an error)."""
        with self._wake:
            target = self._submitted
            return self._wake.wait_for(lambda: self._sent >= target, timeout=timeout)

    def _pending(self) -> bool:
        return bool(self._courier_ids or self._order_ids)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        last_sent_at = float("-inf")
        while True:
            with self._wake:
                if not self._wake.wait_for(self._pending, timeout=IDLE_DISCONNECT_S):
                    # Idle: give the database connection back (a server drops idle clients,
                    # a test run drops its database), and reconnect on the next move.
                    connection.close()
                    self._wake.wait_for(self._pending)
            # What moves until the interval since the last send is over goes out with it.
            time.sleep(max(0.0, last_sent_at + settings.LIVE_UPDATE_INTERVAL_S - time.monotonic()))
            last_sent_at = time.monotonic()
            with self._wake:
                courier_ids, self._courier_ids = self._courier_ids, set()
                order_ids, self._order_ids = self._order_ids, set()
                taken = self._submitted
            try:
                layer = get_channel_layer()
                if layer is not None:
                    updates = fleet_updates_build(courier_ids=sorted(courier_ids), order_ids=sorted(order_ids))
                    loop.run_until_complete(asyncio.wait_for(_publish(layer, updates), PUBLISH_TIMEOUT_S))
            except Exception:  # a live map must never stop the publisher
                logger.exception("live update publish failed")
            try:
                close_old_connections()  # this thread's own connection: drop it if broken
            except Exception:  # nor a database it cannot even check
                logger.exception("live update publisher could not check its database connection")
            with self._wake:
                self._sent = taken
                self._wake.notify_all()


_instance: _Publisher | None = None
_instance_lock = threading.Lock()


def live_updates_flush(*, timeout: float = 5) -> bool:
    """Wait until the live updates submitted so far in this process are sent."""
    return _publisher().flush(timeout=timeout)


def _publisher() -> _Publisher:
    """Created lazily and again after a fork: a forked worker child inherits the object but
    not its thread."""
    global _instance
    with _instance_lock:
        if _instance is None or _instance.pid != os.getpid():
            _instance = _Publisher()
        return _instance


async def _publish(layer, updates: dict) -> None:
    # The fleet map's share in one message; each order's own group gets its own. Sent
    # concurrently, each group_send being a Redis round trip or more, but at most
    # PUBLISH_CONCURRENCY at once: each holds one of the layer's pooled connections (100).
    messages = []
    fleet = updates["fleet"]
    if fleet["c"] or fleet["o"]:
        # `at` lets a socket that reads this late send the current state instead (consumers).
        messages.append((FLEET_GROUP, {"type": "fleet.moved", "at": time.time(), **fleet}))
    messages += [
        (order_group(order_id), {"type": "order.public", "state": state})
        for order_id, state in updates["public"].items()
    ]
    slots = asyncio.Semaphore(PUBLISH_CONCURRENCY)

    async def send(group: str, message: dict) -> None:
        async with slots:
            await layer.group_send(group, message)

    await asyncio.gather(*(send(group, message) for group, message in messages))
