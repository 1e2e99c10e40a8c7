"""Reads of the tracking data: objects and small dataclasses; the APIs, the consumers and
the broadcasts shape them with `tracking.serializers`."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from couriers.models import Courier
from orders.models import ACTIVE_STATUSES, Order, OrderStatus
from tracking.models import Ping

TRACK_MAX_POINTS = 5000
FLEET_MAX = 5000
FLEET_WINDOW_HOURS = 2


def courier_with_location_get(*, courier_id: uuid.UUID) -> Courier:
    courier = couriers_with_location(ids=[courier_id])
    if not courier:
        raise Http404("No such courier.")
    return courier[0]


def orders_with_location(*, ids: Iterable[uuid.UUID] | None = None) -> list[Order]:
    orders = Order.objects.select_related("courier", "last_location")
    if ids is None:
        waiting_or_active = (OrderStatus.PENDING, *ACTIVE_STATUSES)
        return list(orders.filter(status__in=waiting_or_active).order_by("created_at")[:FLEET_MAX])
    return list(orders.filter(id__in=ids))


def couriers_with_location(*, ids: Iterable[uuid.UUID] | None = None) -> list[Courier]:
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


def order_trail_list(*, order: Order) -> QuerySet[Ping, Mapping[str, Any]]:
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
