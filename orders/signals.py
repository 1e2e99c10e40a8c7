"""What orders announce, sent inside the transaction of the change (see "Dependency
direction" in docs/ARCHITECTURE.md). Receivers run in that transaction: one that raises
rolls the change back, so a receiver's writes commit with the order's or not at all."""

from __future__ import annotations

from django.dispatch import Signal

# A courier action was recorded. Keyword argument: event (the OrderEvent, which carries
# order_id, courier_id, event_id, type, recorded_at, the location and accuracy_m).
order_event_recorded = Signal()

# Orders changed status without a courier action (created, cancelled). Keyword argument:
# order_ids.
orders_changed = Signal()
