"""Reads of the tracking data."""

from __future__ import annotations

import uuid

from django.utils import timezone

from couriers.models import Courier
from orders.models import Order
from tracking.models import Ping
from tracking.serializers import CourierLocationSerializer, OrderLocationSerializer

TRACK_MAX_POINTS = 5000


def order_location_get(*, order: Order) -> dict:
    return OrderLocationSerializer(order).data


def courier_location_get(*, courier: Courier) -> dict:
    return CourierLocationSerializer(courier).data


def orders_with_location(*, ids) -> list[Order]:
    return list(Order.objects.filter(id__in=ids).select_related("courier", "last_location"))


def fleet_updates_build(*, courier_ids: list[uuid.UUID], order_ids: list[uuid.UUID]) -> dict:
    """The payloads of the fleet socket for what moved (two queries)."""
    couriers = Courier.objects.filter(id__in=courier_ids).select_related("last_location")
    return {
        "couriers": [CourierLocationSerializer(c).data for c in couriers],
        "orders": [OrderLocationSerializer(o).data for o in orders_with_location(ids=order_ids)],
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
