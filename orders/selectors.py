from __future__ import annotations

import uuid

from django.db.models import Q, QuerySet
from django.http import Http404

from orders.models import ACTIVE_STATUSES, Order, OrderStatus


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


def order_by_tracking_code(*, tracking_code: str) -> Order | None:
    return Order.objects.select_related("courier", "last_location").filter(tracking_code=tracking_code).first()


STATUS_LABELS_PT = {
    OrderStatus.PENDING: "Pedido recebido",
    OrderStatus.ASSIGNED: "Entregador a caminho da loja",
    OrderStatus.IN_TRANSIT: "Saiu para entrega",
    OrderStatus.DELIVERED: "Entregue",
    OrderStatus.CANCELLED: "Cancelado",
}


def order_public_state(*, order: Order) -> dict:
    """What a consumer may see of their order. The courier's position only while the order
    is in transit; never the courier's trail, id or full name."""
    in_transit = order.status == OrderStatus.IN_TRANSIT
    last = order.last_location_or_none if in_transit else None
    return {
        "status": order.status,
        "status_label": STATUS_LABELS_PT[order.status],
        "courier_first_name": order.courier.first_name if order.courier and order.is_active else None,
        "eta_seconds": last.eta_seconds if last else None,
        "location": {"lat": last.location.y, "lon": last.location.x, "recorded_at": last.recorded_at.isoformat()}
        if last
        else None,
        "destination": {"lat": order.destination.y, "lon": order.destination.x},
        "updated_at": (last.updated_at if last else order.updated_at).isoformat(),
    }
