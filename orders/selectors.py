from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from couriers.models import User
from infra.db.queries import binary_execute
from orders.models import ACTIVE_STATUSES, Notification, Order, OrderStatus


def orders_visible_to(*, user: User | AnonymousUser) -> QuerySet[Order]:
    """The backoffice (orders.view_order) sees every order; a courier sees its own and the
    pending ones it may take, of the last COURIER_ORDERS_MAX_AGE_DAYS."""
    orders = Order.objects.select_related("courier")
    courier = getattr(user, "courier", None)
    if courier is None:
        return orders if user.has_perm("orders.view_order") else orders.none()
    since = timezone.now() - dt.timedelta(days=settings.COURIER_ORDERS_MAX_AGE_DAYS)
    return orders.filter(Q(courier=courier) | Q(status=OrderStatus.PENDING), created_at__gte=since)


def order_get_for(*, user: User | AnonymousUser, order_id: uuid.UUID, include_pending: bool = False) -> Order:
    """The order if `user` may act on it, else 404 (never reveal another courier's order)."""
    order = Order.objects.select_related("courier").filter(id=order_id).first()
    if order is None or not order_is_visible_to(
        user=user, courier_id=order.courier_id, status=order.status, include_pending=include_pending
    ):
        raise Http404("No such order.")
    return order


def order_is_visible_to(
    *, user: User | AnonymousUser, courier_id: uuid.UUID | None, status: str, include_pending: bool = False
) -> bool:
    """Whether `user` may act on an order carried by `courier_id` in `status`: a courier on
    its own (and, with `include_pending`, on the pending ones it may take), the backoffice
    (orders.view_order) on any; what it may do to it is the view's permission."""
    courier = getattr(user, "courier", None)
    if courier is None:
        return user.has_perm("orders.view_order")
    return courier_id == courier.id or (include_pending and status == OrderStatus.PENDING)


def courier_active_orders(*, courier_id: uuid.UUID) -> QuerySet[Order]:
    return Order.objects.filter(courier_id=courier_id, status__in=ACTIVE_STATUSES)


@dataclass(frozen=True, slots=True)
class CarriedOrder:
    """An order as the ping worker measures a courier's position against it."""

    id: uuid.UUID
    courier_id: uuid.UUID
    status: str
    destination_lat: float
    destination_lon: float
    started_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


# `courier_active_orders` for many couriers at once, plus the orders their pings name, in
# one statement per batch of pings: the destination as plain numbers (no geometry object per
# order) and rows in binary (no text parsing).
CARRIED_ORDERS_SQL = """
SELECT id, courier_id, status, ST_Y(destination::geometry), ST_X(destination::geometry), started_at
FROM orders_order
WHERE courier_id = ANY(%s::uuid[]) AND (status = ANY(%s::text[]) OR id = ANY(%s::uuid[]))
"""


def couriers_carried_orders(*, courier_ids: Iterable[uuid.UUID], named_ids: Iterable[uuid.UUID]) -> list[CarriedOrder]:
    """The couriers' active orders, and those of `named_ids` that they carry (or carried)."""
    params = [list(courier_ids), list(ACTIVE_STATUSES), list(named_ids)]
    return [CarriedOrder(*row) for row in binary_execute(CARRIED_ORDERS_SQL, params, binary_rows=True).fetchall()]


def order_notifications_list(*, order: Order) -> QuerySet[Notification]:
    return order.notifications.order_by("created_at", "id")
