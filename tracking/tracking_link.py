"""The consumer's tracking link (`/api/v1/track/<code>`, the page `/t/<code>` and the live
updates of `/ws/track/<code>/`): what the holder of an order's tracking code may see, read,
built and written out in this one module.

The ORM version would be `Order.objects.select_related("courier", "last_location")
.filter(tracking_code=code).first()` and `PublicOrderStateSerializer(state).data` through
DRF's field walk. The shortcut, on every poll of every link: the statement is compiled
once per process and prepared (`OneRowQuery`), the order is read as plain values and
coordinates (no model or geometry objects), and the payload is written out by hand; a test
holds it equal to the fields' own output. What it buys is measured in docs/PERFORMANCE.md
("Read path").
"""

from __future__ import annotations

import datetime as dt
import hmac
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from couriers.models import name_first_word
from infra.db.queries import OneRowQuery
from orders.models import ACTIVE_STATUSES, Order, OrderStatus
from tracking.geo import Latitude, Longitude

_DATETIME = serializers.DateTimeField()

STATUS_LABELS: dict[str, str] = {
    OrderStatus.PENDING: "Pedido recebido",
    OrderStatus.ASSIGNED: "Entregador a caminho da loja",
    OrderStatus.IN_TRANSIT: "Saiu para entrega",
    OrderStatus.DELIVERED: "Pedido entregue",
    OrderStatus.CANCELLED: "Pedido cancelado",
}


@dataclass(frozen=True)
class PublicOrderState:
    """What the consumer holding the tracking code may see (`PublicOrderStateSerializer`)."""

    order_id: uuid.UUID | None  # for routing only; never serialized (None: an unknown code's)
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


@dataclass(frozen=True, slots=True)
class TrackingLinkRow:
    """The values an order's public state is made of. The `location_` values are the last
    location's, None while the order has none."""

    id: uuid.UUID | None
    tracking_code: str
    status: str
    updated_at: dt.datetime | None
    delivered_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    courier_name: str | None
    destination_lat: float
    destination_lon: float
    location_lat: float | None
    location_lon: float | None
    location_recorded_at: dt.datetime | None
    location_updated_at: dt.datetime | None
    location_eta_seconds: int | None

    def last_position(self) -> PublicPosition | None:
        """The last location, or None while the order has none (its values are null together)."""
        lat, lon, recorded_at, updated_at = (
            self.location_lat,
            self.location_lon,
            self.location_recorded_at,
            self.location_updated_at,
        )
        if lat is None or lon is None or recorded_at is None or updated_at is None:
            return None
        return PublicPosition(
            lat=lat, lon=lon, recorded_at=recorded_at, updated_at=updated_at, eta_seconds=self.location_eta_seconds
        )


_ORDER_BY_CODE = OneRowQuery(
    lambda: Order.objects.values(
        "id", "tracking_code", "status", "updated_at", "delivered_at", "cancelled_at",
        courier_name=F("courier__name"),
        destination_lat=Latitude("destination"), destination_lon=Longitude("destination"),
        location_lat=Latitude("last_location__location"), location_lon=Longitude("last_location__location"),
        location_recorded_at=F("last_location__recorded_at"),
        location_updated_at=F("last_location__updated_at"),
        location_eta_seconds=F("last_location__eta_seconds"),
    ),
    field="tracking_code",
)  # fmt: skip

# Stands in for a missing order so that an unknown code costs the same work as a known one.
_NO_ORDER = TrackingLinkRow(
    id=None, tracking_code="", status=OrderStatus.PENDING, updated_at=None, delivered_at=None, cancelled_at=None,
    courier_name=None, destination_lat=0.0, destination_lon=0.0, location_lat=None, location_lon=None,
    location_recorded_at=None, location_updated_at=None, location_eta_seconds=None,
)  # fmt: skip


def order_public_state_get(*, tracking_code: str) -> PublicOrderState | None:
    """The public state of the order `tracking_code` opens, or None for an unknown code.

    An unknown code runs the same query and builds the same state before it is refused, and
    the codes are compared in constant time: the answer time says nothing."""
    found = _ORDER_BY_CODE.get(tracking_code[:64])
    row = _NO_ORDER if found is None else TrackingLinkRow(**found)
    state = _public_state(
        order_id=row.id,
        status=row.status,
        ended_at=row.delivered_at or row.cancelled_at,
        updated_at=row.updated_at,
        destination={"lat": row.destination_lat, "lon": row.destination_lon},
        courier_name=row.courier_name,
        last=row.last_position(),
    )
    if not hmac.compare_digest(row.tracking_code.encode(), tracking_code.encode()) or found is None:
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
        courier_name=order.courier.name if order.courier is not None else None,
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


# Shapes `PublicOrderState` for REST, the page and `/ws/track/<code>/` alike.
class PublicOrderStateSerializer(serializers.Serializer):
    """The consumer's view of an order (the tracking link and the tracking page)."""

    status = serializers.ChoiceField(choices=OrderStatus.choices)
    status_label = serializers.CharField()
    eta_seconds = serializers.IntegerField(allow_null=True)
    courier_first_name = serializers.CharField(allow_null=True)
    location = inline_serializer(
        "PublicCourierLocation",
        {"lat": serializers.FloatField(), "lon": serializers.FloatField(), "recorded_at": serializers.DateTimeField()},
        allow_null=True,
    )
    destination = inline_serializer(
        "PublicDestination", {"lat": serializers.FloatField(), "lon": serializers.FloatField()}, allow_null=True
    )
    updated_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, state) -> dict:
        """The fields above, written out: DRF's walk over them cost more than reading and
        building the state (every poll of every tracking link). A test holds the two equal."""
        location, destination = state.location, state.destination
        return {
            "status": str(state.status),
            "status_label": str(state.status_label),
            "eta_seconds": None if state.eta_seconds is None else int(state.eta_seconds),
            "courier_first_name": None if state.courier_first_name is None else str(state.courier_first_name),
            "location": None
            if location is None
            else {
                "lat": float(location["lat"]),
                "lon": float(location["lon"]),
                "recorded_at": _DATETIME.to_representation(location["recorded_at"]),
            },
            "destination": None
            if destination is None
            else {"lat": float(destination["lat"]), "lon": float(destination["lon"])},
            "updated_at": None if state.updated_at is None else _DATETIME.to_representation(state.updated_at),
        }
