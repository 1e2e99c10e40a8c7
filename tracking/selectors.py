"""Reads of the tracking data: objects and small dataclasses; the APIs, the consumers and
the broadcasts shape them with `tracking.serializers`."""

from __future__ import annotations

import datetime as dt
import hmac
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from couriers.models import Courier, name_first_word
from infra.db.queries import OneRowQuery
from orders.models import ACTIVE_STATUSES, Order, OrderStatus
from tracking.geo import Latitude, Longitude
from tracking.models import Ping

TRACK_MAX_POINTS = 5000
FLEET_MAX = 5000
FLEET_WINDOW_HOURS = 2


def courier_with_location_get(*, courier_id: uuid.UUID) -> Courier:
    courier = couriers_with_location(ids=[courier_id])
    if not courier:
        raise Http404("No such courier.")
    return courier[0]


# What `GET /orders/{id}/location` shows of an order (`OrderLocationSerializer`, rendered by
# `order_location_payload`), plus its courier's id for the ownership check: plain values and
# coordinates, read with the caller's token in one statement (see the API). No instances and
# no geometry objects: the route is polled by every courier app and the backoffice.
def _order_values_located(*fields: str) -> QuerySet:
    """Order `values()` with the destination's and the last location's coordinates as plain
    numbers (`destination_lat`, `destination_lon`, `lat`, `lon`): no geometry objects."""
    return Order.objects.values(*fields).annotate(
        destination_lat=Latitude("destination"), destination_lon=Longitude("destination"),
        lat=Latitude("last_location__location"), lon=Longitude("last_location__location"),
    )  # fmt: skip


ORDER_LOCATION = OneRowQuery(
    lambda: _order_values_located(
        "id", "status", "courier_id", "courier__name",
        "last_location__accuracy_m", "last_location__recorded_at", "last_location__updated_at",
        "last_location__distance_to_destination_m", "last_location__eta_seconds",
    ),
    field="id",
)  # fmt: skip


def orders_with_location(*, ids=None) -> list[Order]:
    orders = Order.objects.select_related("courier", "last_location")
    if ids is None:
        waiting_or_active = (OrderStatus.PENDING, *ACTIVE_STATUSES)
        return list(orders.filter(status__in=waiting_or_active).order_by("created_at")[:FLEET_MAX])
    return list(orders.filter(id__in=ids))


def couriers_with_location(*, ids=None) -> list[Courier]:
    """With `active_order_ids` (oldest first) read in the same statement: no order instances."""
    active = Order.objects.filter(courier_id=OuterRef("id"), status__in=ACTIVE_STATUSES).order_by("created_at")
    couriers = Courier.objects.select_related("last_location")
    couriers = couriers.annotate(active_order_ids=ArraySubquery(active.values("id")))
    if ids is None:
        # Couriers seen recently or carrying an order; the rest are off shift.
        since = timezone.now() - dt.timedelta(hours=FLEET_WINDOW_HOURS)
        couriers = couriers.filter(
            Q(last_location__updated_at__gte=since) | Q(orders__status__in=ACTIVE_STATUSES)
        ).distinct()
        return list(couriers.order_by("name")[:FLEET_MAX])
    return list(couriers.filter(id__in=ids))


STATUS_LABELS = {
    OrderStatus.PENDING: "Pedido recebido",
    OrderStatus.ASSIGNED: "Entregador a caminho da loja",
    OrderStatus.IN_TRANSIT: "Saiu para entrega",
    OrderStatus.DELIVERED: "Pedido entregue",
    OrderStatus.CANCELLED: "Pedido cancelado",
}


@dataclass(frozen=True)
class PublicOrderState:
    """What the consumer holding the tracking code may see (`PublicOrderStateSerializer`)."""

    order_id: uuid.UUID  # for routing only; never serialized
    status: str
    status_label: str
    eta_seconds: int | None
    courier_first_name: str | None
    location: dict | None
    destination: dict | None
    updated_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class PublicPosition:
    """An order's last location, before `_public_state` says what of it a consumer sees."""

    lat: float
    lon: float
    recorded_at: dt.datetime
    updated_at: dt.datetime
    eta_seconds: int | None


# The order a consumer's tracking link opens (every poll of the link and the page reads it):
# the values its public state is made of (`_public_state`), coordinates included, and no
# instances or geometry objects.
_ORDER_BY_CODE = OneRowQuery(
    lambda: _order_values_located(
        "id", "tracking_code", "status", "updated_at", "delivered_at", "cancelled_at", "courier__name",
        "last_location__recorded_at", "last_location__updated_at", "last_location__eta_seconds",
    ),
    field="tracking_code",
)  # fmt: skip

# Stands in for a missing order so that an unknown code costs the same work as a known one.
_NO_ORDER = {
    "id": None, "tracking_code": "", "status": OrderStatus.PENDING, "updated_at": None, "delivered_at": None,
    "cancelled_at": None, "courier__name": None, "last_location__recorded_at": None,
    "last_location__updated_at": None, "last_location__eta_seconds": None,
    "destination_lat": 0.0, "destination_lon": 0.0, "lat": None, "lon": None,
}  # fmt: skip


def order_public_state_get(*, tracking_code: str) -> PublicOrderState | None:
    """The public state of the order `tracking_code` opens, or None for an unknown code.

    An unknown code runs the same query and builds the same state before it is refused, and
    the codes are compared in constant time: the answer time says nothing."""
    found = _ORDER_BY_CODE.get(tracking_code[:64])
    row = found or _NO_ORDER
    located = row["last_location__recorded_at"] is not None
    state = _public_state(
        order_id=row["id"],
        status=row["status"],
        ended_at=row["delivered_at"] or row["cancelled_at"],
        updated_at=row["updated_at"],
        destination={"lat": row["destination_lat"], "lon": row["destination_lon"]},
        courier_name=row["courier__name"],
        last=PublicPosition(
            lat=row["lat"], lon=row["lon"], recorded_at=row["last_location__recorded_at"],
            updated_at=row["last_location__updated_at"], eta_seconds=row["last_location__eta_seconds"],
        ) if located else None,
    )  # fmt: skip
    if not hmac.compare_digest(row["tracking_code"].encode(), tracking_code.encode()) or found is None:
        return None
    return state


def order_public_state_build(*, order: Order) -> PublicOrderState:
    """The public state of an order read with its courier and last location (the live
    updates), as `order_public_state_get` reads it by code."""
    # Only in transit is the position shown (and read, if it was not). A missing reverse
    # one-to-one raises a DoesNotExist that is also an AttributeError.
    last = getattr(order, "last_location", None) if order.status == OrderStatus.IN_TRANSIT else None
    return _public_state(
        order_id=order.id,
        status=order.status,
        ended_at=order.trail_ends_at,
        updated_at=order.updated_at,
        destination=order.destination_latlon,
        courier_name=order.courier.name if order.courier_id else None,
        last=PublicPosition(
            lat=last.location.y, lon=last.location.x, recorded_at=last.recorded_at,
            updated_at=last.updated_at, eta_seconds=last.eta_seconds,
        ) if last else None,
    )  # fmt: skip


def _public_state(
    *,
    order_id: uuid.UUID | None,
    status: str,
    ended_at: dt.datetime | None,
    updated_at: dt.datetime | None,
    destination: dict,
    courier_name: str | None,
    last: PublicPosition | None,
) -> PublicOrderState:
    """Privacy: the courier's first name only while assigned or in transit, the courier's
    position (and the ETA) only while in transit; never the courier's id, full name, phone
    or trail. TRACKING_LINK_TTL_AFTER_END_S after delivery or cancellation, the status only
    (a forwarded or leaked link stops pointing at the consumer's door)."""
    if ended_at and timezone.now() - ended_at > dt.timedelta(seconds=settings.TRACKING_LINK_TTL_AFTER_END_S):
        return PublicOrderState(
            order_id=order_id, status=status, status_label=STATUS_LABELS[status], eta_seconds=None,
            courier_first_name=None, location=None, destination=None, updated_at=None,
        )  # fmt: skip
    if status != OrderStatus.IN_TRANSIT:
        last = None
    if status not in ACTIVE_STATUSES:
        courier_name = None
    return PublicOrderState(
        order_id=order_id,
        status=status,
        status_label=STATUS_LABELS[status],
        eta_seconds=last.eta_seconds if last else None,
        courier_first_name=name_first_word(courier_name) if courier_name is not None else None,
        location={"lat": last.lat, "lon": last.lon, "recorded_at": last.recorded_at} if last else None,
        destination=destination,
        updated_at=max(updated_at, last.updated_at) if last and updated_at else updated_at,
    )


def order_trail_list(*, order: Order) -> QuerySet:
    """The order's trail: the courier's trusted pings from assignment to delivery (or now),
    in device-time order, as dicts. Pings are filed under the courier, so an order carried
    alongside another one still gets its whole trail. Suspect pings are left out."""
    if not (order.courier_id and order.assigned_at):
        return Ping.objects.none().values()
    return (
        Ping.objects.filter(
            courier_id=order.courier_id,
            recorded_at__gte=order.assigned_at,
            recorded_at__lte=order.trail_ends_at or timezone.now() + dt.timedelta(minutes=10),
            suspect_reason__isnull=True,
        )
        .order_by("recorded_at")
        .values("event_id", "recorded_at", "lat", "lon", "accuracy_m", "speed_mps", "heading_deg")[:TRACK_MAX_POINTS]
    )
