"""Order writes: creation and the courier's state machine."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.contrib.gis.geos import Point
from django.db import transaction
from django.utils import timezone

from couriers.models import Courier
from orders.models import NotificationKind, Order, OrderEvent, OrderEventType, OrderStatus
from orders.notifications import notifications_create
from orders.signals import order_event_recorded, orders_changed

# event type -> (status it applies to, status it leads to, timestamp it sets)
TRANSITIONS: dict[str, tuple[OrderStatus, OrderStatus, str]] = {
    OrderEventType.ASSIGNED: (OrderStatus.PENDING, OrderStatus.ASSIGNED, "assigned_at"),
    OrderEventType.STARTED: (OrderStatus.ASSIGNED, OrderStatus.IN_TRANSIT, "started_at"),
    OrderEventType.DELIVERED: (OrderStatus.IN_TRANSIT, OrderStatus.DELIVERED, "delivered_at"),
}
# What the consumer is told when an action applies (arriving comes from the pings).
NOTIFIED: dict[str, NotificationKind] = {
    OrderEventType.ASSIGNED: NotificationKind.ASSIGNED,
    OrderEventType.STARTED: NotificationKind.ON_THE_WAY,
    OrderEventType.DELIVERED: NotificationKind.DELIVERED,
}
CANCELLABLE = (OrderStatus.PENDING, OrderStatus.ASSIGNED, OrderStatus.IN_TRANSIT)


class TransitionNotAllowed(Exception):
    def __init__(self, *, current_status: str | None, message: str) -> None:
        super().__init__(message)
        self.current_status = current_status


class EventIdReused(Exception):
    """The client sent a known event_id for a different action."""


def order_create(*, consumer_name: str, lat: float, lon: float, external_id: str | None = None) -> Order:
    with transaction.atomic():  # a duplicate external_id rolls back only this
        order = Order.objects.create(
            consumer_name=consumer_name, destination=Point(lon, lat, srid=4326), external_id=external_id
        )
        orders_changed.send(sender=Order, order_ids=[order.id])
    return order


@dataclass
class TransitionResult:
    event: OrderEvent
    replayed: bool


def order_transition(
    *,
    order_id: uuid.UUID,
    courier: Courier,
    event_type: str,
    event_id: uuid.UUID,
    recorded_at: dt.datetime,
    lat: float,
    lon: float,
    accuracy_m: float | None = None,
) -> TransitionResult:
    """Steps: answer a known event_id with its first result; move the order with one
    conditional UPDATE; record the event; write the consumer's notification to the outbox;
    announce the event with its position (`order_event_recorded`, sent in the transaction:
    tracking records it as a ping of the order, so the order's last location and the
    notification commit with its status, or nothing does)."""
    from_status, to_status, stamp = TRANSITIONS[event_type]
    with transaction.atomic():
        replay = _event_replay(event_id=event_id, order_id=order_id, courier=courier, event_type=event_type)
        if replay:
            return replay
        matching = Order.objects.filter(id=order_id, status=from_status)
        changes = {"status": to_status, stamp: recorded_at, "updated_at": timezone.now()}
        if event_type == OrderEventType.ASSIGNED:
            matching = matching.filter(courier__isnull=True)
            changes["courier"] = courier
        else:
            matching = matching.filter(courier=courier)
        # The WHERE on the current status is the guard: of two couriers racing for one
        # pending order, or one event sent twice at once, exactly one UPDATE matches; the
        # other blocks on the row lock, then sees the new status and matches nothing.
        if matching.update(**changes) == 0:
            replay = _event_replay(event_id=event_id, order_id=order_id, courier=courier, event_type=event_type)
            if replay:
                return replay
            current = Order.objects.filter(id=order_id).values_list("status", flat=True).first()
            raise TransitionNotAllowed(
                current_status=current, message=f"Cannot apply '{event_type}' to an order that is '{current}'."
            )
        event = OrderEvent.objects.create(
            event_id=event_id,
            order_id=order_id,
            courier=courier,
            type=event_type,
            status_after=to_status,
            recorded_at=recorded_at,
            location=Point(lon, lat, srid=4326),
            accuracy_m=accuracy_m,
        )
        notifications_create(order_ids=[order_id], kind=NOTIFIED[event_type])
        # send(), not send_robust(): a receiver that fails rolls the transition back.
        order_event_recorded.send(sender=OrderEvent, event=event)
    return TransitionResult(event=event, replayed=False)


def _event_replay(
    *, event_id: uuid.UUID, order_id: uuid.UUID, courier: Courier, event_type: str
) -> TransitionResult | None:
    event = OrderEvent.objects.filter(courier=courier, event_id=event_id).first()
    if event is None:
        return None
    if event.order_id != order_id or event.courier_id != courier.id or event.type != event_type:
        raise EventIdReused(f"event_id {event_id} was already used for another action.")
    return TransitionResult(event=event, replayed=True)


def order_cancel(*, order_id: uuid.UUID) -> Order:
    """Staff cancel an order that is not finished yet."""
    now = timezone.now()
    with transaction.atomic():
        if (
            Order.objects.filter(id=order_id, status__in=CANCELLABLE).update(
                status=OrderStatus.CANCELLED, cancelled_at=now, updated_at=now
            )
            == 0
        ):
            current = Order.objects.filter(id=order_id).values_list("status", flat=True).first()
            raise TransitionNotAllowed(current_status=current, message=f"Cannot cancel an order that is '{current}'.")
        OrderEvent.objects.create(
            event_id=uuid.uuid4(),
            order_id=order_id,
            type=OrderEventType.CANCELLED,
            status_after=OrderStatus.CANCELLED,
            recorded_at=now,
        )
        orders_changed.send(sender=Order, order_ids=[order_id])
        return Order.objects.select_related("courier").get(id=order_id)
