"""Reads of the tracking data."""

from __future__ import annotations

import datetime as dt
import uuid

from django.db.models import Prefetch, Q
from django.utils import timezone

from couriers.models import Courier
from orders.models import ACTIVE_STATUSES, Order, OrderStatus
from orders.selectors import order_public_state_build
from tracking.models import Ping
from tracking.serializers import CourierLocationSerializer, OrderLocationSerializer

TRACK_MAX_POINTS = 5000
FLEET_MAX = 5000
FLEET_WINDOW_HOURS = 2


def order_location_get(*, order: Order) -> dict:
    return OrderLocationSerializer(order).data


def courier_location_get(*, courier: Courier) -> dict:
    return CourierLocationSerializer(courier).data


def orders_with_location(*, ids=None) -> list[Order]:
    orders = Order.objects.select_related("courier", "last_location")
    if ids is None:
        waiting_or_active = (OrderStatus.PENDING, *ACTIVE_STATUSES)
        return list(orders.filter(status__in=waiting_or_active).order_by("created_at")[:FLEET_MAX])
    return list(orders.filter(id__in=ids))


def couriers_with_location(*, ids=None) -> list[Courier]:
    couriers = Courier.objects.select_related("last_location").prefetch_related(
        Prefetch("orders", queryset=Order.objects.filter(status__in=ACTIVE_STATUSES), to_attr="active_orders")
    )
    if ids is None:
        # Couriers seen recently or carrying an order; the rest are off shift.
        since = timezone.now() - dt.timedelta(hours=FLEET_WINDOW_HOURS)
        couriers = couriers.filter(
            Q(last_location__updated_at__gte=since) | Q(orders__status__in=ACTIVE_STATUSES)
        ).distinct()
        return list(couriers.order_by("name")[:FLEET_MAX])
    return list(couriers.filter(id__in=ids))


def fleet_state_get() -> dict:
    """What `/ws/fleet/` sends first: active couriers and orders."""
    return {
        "couriers": CourierLocationSerializer(couriers_with_location(), many=True).data,
        "orders": OrderLocationSerializer(orders_with_location(), many=True).data,
    }


def fleet_updates_build(*, courier_ids: list[uuid.UUID], order_ids: list[uuid.UUID]) -> dict:
    """The payloads for what moved: fleet entries, and each order's public state."""
    orders = orders_with_location(ids=order_ids) if order_ids else []
    return {
        "couriers": CourierLocationSerializer(couriers_with_location(ids=courier_ids), many=True).data
        if courier_ids
        else [],
        "orders": OrderLocationSerializer(orders, many=True).data,
        "public": {str(o.id): order_public_state_build(order=o) for o in orders},
    }


def order_track_get(*, order: Order) -> dict:
    """The order's trail as GeoJSON: the courier's pings from assignment to delivery (or
    now), in device-time order. Pings are filed under the courier, so an order carried
    alongside another one still gets its whole trail. Suspect pings are left out."""
    features: list[dict] = []
    if order.courier_id and order.assigned_at:
        pings = (
            Ping.objects.filter(
                courier_id=order.courier_id,
                recorded_at__gte=order.assigned_at,
                recorded_at__lte=order.trail_ends_at or timezone.now() + timezone.timedelta(minutes=10),
                suspect_reason__isnull=True,
            )
            .order_by("recorded_at")
            .values_list("event_id", "recorded_at", "location", "accuracy_m", "speed_mps", "heading_deg")[
                :TRACK_MAX_POINTS
            ]
        )
        for event_id, recorded_at, location, accuracy_m, speed_mps, heading_deg in pings:
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [location.x, location.y]},
                    "properties": {
                        "event_id": str(event_id),
                        "recorded_at": recorded_at.isoformat(),
                        "accuracy_m": accuracy_m,
                        "speed_mps": speed_mps,
                        "heading_deg": heading_deg,
                    },
                }
            )
    return {"type": "FeatureCollection", "properties": {"order_id": str(order.id)}, "features": features}
