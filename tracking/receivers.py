"""Tracking's side of what orders announce (`orders.signals`), connected in
`TrackingConfig.ready`. Both run inside the sender's transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from orders.models import OrderEvent
from tracking import broadcasts
from tracking.services.ingest import ping_batch_record


def order_event_ping_record(*, event: OrderEvent, **kwargs: Any) -> None:
    """A courier action's position is a ping of the order, stored with the action."""
    # Sent for a courier's action only, which has its courier and its position.
    assert event.courier_id is not None and event.location is not None
    ping_batch_record(
        courier_id=event.courier_id,
        received_at=timezone.now(),
        pings=[
            {
                "event_id": event.event_id,
                "recorded_at": event.recorded_at,
                "lat": event.location.y,
                "lon": event.location.x,
                "accuracy_m": event.accuracy_m,
                "order_id": event.order_id,
                "attributes": {"order_event": event.type},
            }
        ],
        # The status travels even when the action's position does not move the order
        # (its device time is older than the last ping, or the fix is implausible).
        changed_order_ids=[event.order_id],
    )


def orders_changed_publish(*, order_ids, **kwargs) -> None:
    """A status change without a new position (creation, cancellation) reaches the live
    views once committed."""
    transaction.on_commit(lambda: broadcasts.orders_publish(order_ids=order_ids))
