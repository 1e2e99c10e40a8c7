from __future__ import annotations

import uuid

from django.db.models import Q, QuerySet
from django.http import Http404

from infra.db.queries import OneRowQuery
from orders.models import ACTIVE_STATUSES, Notification, Order, OrderStatus

# An order with its courier and last location (tracking's, named by its relation only).
_ORDER = OneRowQuery(lambda: Order.objects.select_related("courier", "last_location"), field="id")


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
    order = _ORDER.get(order_id)
    if order is None or not order_is_visible_to(
        user=user, courier_id=order.courier_id, status=order.status, include_pending=include_pending
    ):
        raise Http404("No such order.")
    return order


def order_is_visible_to(*, user, courier_id: uuid.UUID | None, status: str, include_pending: bool = False) -> bool:
    """Whether `user` may act on an order carried by `courier_id` in `status`: staff on any,
    a courier on its own (and, with `include_pending`, on the pending ones it may take)."""
    if user.is_staff:
        return True
    courier = getattr(user, "courier", None)
    if courier is None:
        return False
    return courier_id == courier.id or (include_pending and status == OrderStatus.PENDING)


def courier_active_orders(*, courier_id) -> QuerySet[Order]:
    return Order.objects.filter(courier_id=courier_id, status__in=ACTIVE_STATUSES)


def order_notifications_list(*, order: Order) -> QuerySet[Notification]:
    return order.notifications.order_by("created_at", "id")
