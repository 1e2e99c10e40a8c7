"""Enrichment: what the worker adds to a batch of pings before it is stored.

This is the layer where extra information joins the location stream: the orders the
courier is carrying, the distance and ETA to each destination, and a plausibility flag
(`plausibility.py`).
Unknown fields from the app travel untouched in `attributes` (jsonb), so a new field in the
app needs no migration here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from orders.models import OrderStatus
from orders.selectors import CarriedOrder, couriers_carried_orders
from tracking.geo import haversine_m
from tracking.rules import tracking_rules
from tracking.services.plausibility import pings_judge

# Streets are not straight lines: great-circle distance times this is a fair urban estimate.
ROAD_FACTOR = 1.3


@dataclass
class OrderLeg:
    """Where one ping stands relative to one order it belongs to."""

    order_id: uuid.UUID
    status: str
    distance_to_destination_m: float
    eta_seconds: int
    # When the delivery started (device time): pings recorded earlier never mean "arriving".
    started_at: dt.datetime | None = None


@dataclass
class EnrichedPing:
    event_id: uuid.UUID
    courier_id: uuid.UUID
    recorded_at: dt.datetime
    received_at: dt.datetime
    lat: float
    lon: float
    accuracy_m: float | None = None
    speed_mps: float | None = None
    heading_deg: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    explicit_order_id: uuid.UUID | None = None
    legs: list[OrderLeg] = field(default_factory=list)
    suspect_reason: str | None = None
    # A trusted fix that another fix agrees with or that is accurate enough on its own
    # (`plausibility.py` rule 4): only such a fix may send "arriving".
    confirmed: bool = False
    # A stored fix the position filter reinstated as its courier's newest trusted one: it
    # joins the batch to move the last location, and is not stored again.
    reinstated: bool = False

    # Stored columns (`tracking.columns`) that come from the primary leg.
    @property
    def order_id(self) -> uuid.UUID | None:
        leg = self.primary_leg
        return leg.order_id if leg else None

    @property
    def distance_to_destination_m(self) -> float | None:
        leg = self.primary_leg
        return leg.distance_to_destination_m if leg else None

    @property
    def eta_seconds(self) -> int | None:
        leg = self.primary_leg
        return leg.eta_seconds if leg else None

    @property
    def primary_leg(self) -> OrderLeg | None:
        """The order a ping is filed under: the one the app named, else the nearest one in
        transit, else the nearest assigned one."""
        if not self.legs:
            return None
        return min(self.legs, key=lambda leg: (leg.status != OrderStatus.IN_TRANSIT, leg.distance_to_destination_m))


def eta_seconds_estimate(*, distance_m: float) -> int:
    return round(distance_m * ROAD_FACTOR / tracking_rules().default_speed_mps)


@dataclass
class PingBatch:
    """One batch as the API queued it: a courier's validated pings and when they arrived."""

    courier_id: uuid.UUID
    received_at: dt.datetime
    pings: list[dict[str, Any]]

    @classmethod
    def of(
        cls, *, courier_id: uuid.UUID | str, received_at: dt.datetime | str, pings: list[dict[str, Any]]
    ) -> PingBatch:
        """From a task message's plain JSON (ids and times as text) or from Python values."""
        if isinstance(received_at, str):
            received_at = dt.datetime.fromisoformat(received_at)
        return cls(courier_id=uuid.UUID(str(courier_id)), received_at=received_at, pings=pings)


def pings_enrich(*, batches: list[PingBatch]) -> list[EnrichedPing]:
    """Steps: judge each position against its courier's fixes around it (one query for all
    the batches, see `plausibility.py`; a stored fix it reinstates as the newest joins the
    pings as a resent ping); load the couriers' orders (active ones and any the pings name)
    in one query; attach orders with distance and ETA. Returns the pings of every batch
    sorted by `recorded_at`."""
    enriched = [
        EnrichedPing(
            event_id=uuid.UUID(str(p["event_id"])),
            courier_id=batch.courier_id,
            recorded_at=dt.datetime.fromisoformat(p["recorded_at"])
            if isinstance(p["recorded_at"], str)
            else p["recorded_at"],
            received_at=batch.received_at,
            lat=p["lat"],
            lon=p["lon"],
            accuracy_m=p.get("accuracy_m"),
            speed_mps=p.get("speed_mps"),
            heading_deg=p.get("heading_deg"),
            attributes=p.get("attributes") or {},
            explicit_order_id=uuid.UUID(str(p["order_id"])) if p.get("order_id") else None,
        )
        for batch in batches
        for p in batch.pings
    ]
    enriched.sort(key=lambda p: p.recorded_at)
    resent = pings_judge(pings=enriched)
    if resent:
        received_at = {batch.courier_id: batch.received_at for batch in batches}
        enriched += [
            EnrichedPing(event_id=f.key[0], courier_id=courier_id, recorded_at=f.recorded_at,
                         received_at=received_at[courier_id], lat=f.lat, lon=f.lon, accuracy_m=f.accuracy_m,
                         speed_mps=f.speed_mps, heading_deg=f.heading_deg, confirmed=f.confirmed,
                         reinstated=True)
            for courier_id, f in resent
        ]  # fmt: skip
        enriched.sort(key=lambda p: p.recorded_at)
    courier_ids = {batch.courier_id for batch in batches}
    named = {p.explicit_order_id for p in enriched if p.explicit_order_id}
    orders = couriers_carried_orders(courier_ids=courier_ids, named_ids=named)
    active: dict[uuid.UUID, list[CarriedOrder]] = {}
    for order in orders:
        if order.active:
            active.setdefault(order.courier_id, []).append(order)
    by_id: dict[uuid.UUID | None, CarriedOrder] = {o.id: o for o in orders}

    for ping in enriched:
        named_order = by_id.get(ping.explicit_order_id)
        # An order the ping names counts only if it is its courier's.
        if named_order is not None and named_order.courier_id == ping.courier_id:
            chosen = [named_order]
        else:
            chosen = active.get(ping.courier_id, [])
        for order in chosen:
            distance = haversine_m(ping.lat, ping.lon, order.destination_lat, order.destination_lon)
            ping.legs.append(
                OrderLeg(order.id, order.status, round(distance, 1), eta_seconds_estimate(distance_m=distance),
                         order.started_at)
            )  # fmt: skip

    return enriched
