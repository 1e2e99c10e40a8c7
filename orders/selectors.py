from __future__ import annotations

import hmac
import uuid

from django.contrib.gis.geos import Point
from django.db.models import Q, QuerySet
from django.http import Http404

from orders.models import ACTIVE_STATUSES, Notification, Order, OrderStatus


def orders_visible_to(*, user) -> QuerySet[Order]:
    """Staff see every order; a courier sees its own and the pending ones it may take."""
    orders = Order.objects.select_related("courier")
    if user.is_staff:
        return orders
    courier = getattr(user, "courier", None)
    if courier is None:
        return orders.none()
    return orders.filter(Q(courier=courier) | Q(status=OrderStatus.PENDING))


def order_get_for(*, user, order_id: uuid.UUID, include_pending: bool = False) -> Order:
    """The order if `user` may act on it, else 404 (never reveal another courier's order)."""
    order = Order.objects.select_related("courier", "last_location").filter(id=order_id).first()
    if order is not None:
        if user.is_staff:
            return order
        courier = getattr(user, "courier", None)
        if courier is not None and order.courier_id == courier.id:
            return order
        if courier is not None and include_pending and order.status == OrderStatus.PENDING:
            return order
    raise Http404("No such order.")


def courier_active_orders(*, courier_id) -> QuerySet[Order]:
    return Order.objects.filter(courier_id=courier_id, status__in=ACTIVE_STATUSES)


def order_notifications_list(*, order: Order) -> QuerySet[Notification]:
    return order.notifications.order_by("created_at", "id")


STATUS_LABELS = {
    OrderStatus.PENDING: "Pedido recebido",
    OrderStatus.ASSIGNED: "Entregador a caminho da loja",
    OrderStatus.IN_TRANSIT: "Saiu para entrega",
    OrderStatus.DELIVERED: "Pedido entregue",
    OrderStatus.CANCELLED: "Pedido cancelado",
}

# Stands in for a missing order so that an unknown code costs the same work as a known one.
_NO_ORDER = Order(tracking_code="", status=OrderStatus.PENDING, destination=Point(0, 0, srid=4326))


def order_public_state_get(*, tracking_code: str) -> dict | None:
    """What the consumer holding `tracking_code` may see, or None for an unknown code.

    Privacy: the courier's first name only while assigned or in transit, the courier's
    position (and the ETA) only while in transit; never the courier's id, full name, phone
    or trail. An unknown code runs the same query and builds the same payload before it is
    refused, and the codes are compared in constant time: the answer time says nothing."""
    found = Order.objects.select_related("courier", "last_location").filter(tracking_code=tracking_code[:64]).first()
    order = found or _NO_ORDER
    state = order_public_state_build(order=order)
    if not hmac.compare_digest(order.tracking_code.encode(), tracking_code.encode()) or found is None:
        return None
    return state


def order_public_state_build(*, order: Order) -> dict:
    in_transit = order.status == OrderStatus.IN_TRANSIT
    # A missing reverse one-to-one raises a DoesNotExist that is also an AttributeError.
    last = getattr(order, "last_location", None) if in_transit else None
    courier_first_name = None
    if order.status in ACTIVE_STATUSES and order.courier_id:
        courier_first_name = (order.courier.name.split() or [""])[0]
    return {
        "status": order.status,
        "status_label": STATUS_LABELS[order.status],
        "eta_seconds": last.eta_seconds if last else None,
        "courier_first_name": courier_first_name,
        "location": {"lat": last.location.y, "lon": last.location.x, "recorded_at": last.recorded_at.isoformat()}
        if last
        else None,
        "destination": {"lat": order.destination.y, "lon": order.destination.x},
        # Strings, not datetimes: the same payload travels over the Channels layer.
        "updated_at": _iso(max(order.updated_at, last.updated_at) if last and order.updated_at else order.updated_at),
    }


def _iso(value):
    return value.isoformat() if value else None


def order_by_tracking_code(*, tracking_code: str) -> Order | None:
    return Order.objects.select_related("courier", "last_location").filter(tracking_code=tracking_code[:64]).first()
