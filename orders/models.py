from __future__ import annotations

import secrets
import uuid

from django.contrib.gis.db import models


def tracking_code_new() -> str:
    # 24 random bytes: 192 bits, URL-safe, unguessable.
    return secrets.token_urlsafe(24)


class OrderStatus(models.TextChoices):
    PENDING = "pending"
    ASSIGNED = "assigned"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


# On the road: a courier carries the order.
ACTIVE_STATUSES = (OrderStatus.ASSIGNED, OrderStatus.IN_TRANSIT)


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    external_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    consumer_name = models.CharField(max_length=120)
    destination = models.PointField(geography=True, srid=4326)
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING)
    courier = models.ForeignKey(
        "couriers.Courier", on_delete=models.PROTECT, null=True, blank=True, related_name="orders"
    )
    tracking_code = models.CharField(max_length=64, unique=True, default=tracking_code_new, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Device times of the courier's actions; they bound the order's trail.
    assigned_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("cancel_order", "Can cancel an order")]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["courier", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.external_id or self.id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def destination_latlon(self) -> dict[str, float]:
        """The destination as every payload shows it."""
        return {"lat": self.destination.y, "lon": self.destination.x}

    @property
    def trail_ends_at(self):
        return self.delivered_at or self.cancelled_at


class OrderEventType(models.TextChoices):
    ASSIGNED = "assigned"
    STARTED = "started"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class OrderEvent(models.Model):
    """One courier (or staff) action on an order. `event_id` comes from the client, so a
    resent event is recognised and answered the same way; it is the courier's key, so two
    couriers' apps may reuse one."""

    event_id = models.UUIDField()
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    courier = models.ForeignKey("couriers.Courier", on_delete=models.PROTECT, null=True, blank=True)
    type = models.CharField(max_length=16, choices=OrderEventType.choices)
    status_after = models.CharField(max_length=16, choices=OrderStatus.choices)
    recorded_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    location = models.PointField(geography=True, srid=4326, null=True, blank=True)
    accuracy_m = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            # Staff actions have no courier and a server-made event id: NULLS NOT DISTINCT
            # keeps those unique among themselves too.
            models.UniqueConstraint(
                fields=["courier", "event_id"], name="order_event_once_per_courier", nulls_distinct=False
            ),
        ]
        indexes = [models.Index(fields=["order", "recorded_at"])]

    def __str__(self) -> str:
        return f"{self.type} {self.order_id}"


class NotificationKind(models.TextChoices):
    ASSIGNED = "assigned"
    ON_THE_WAY = "on_the_way"
    ARRIVING = "arriving"
    DELIVERED = "delivered"


class NotificationStatus(models.TextChoices):
    PENDING = "pending"
    # Claimed by one worker that is talking to the provider right now.
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Notification(models.Model):
    """The outbox: one row per message the consumer must get, written in the transaction of
    the change that causes it, delivered afterwards by a Celery task."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    status = models.CharField(max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        permissions = [("resend_notification", "Can send a failed notification again")]
        constraints = [
            # The exactly-once guard: every writer inserts with ON CONFLICT DO NOTHING, so a
            # burst of pings, a resent event, a retried task or two workers racing all end
            # with one row per (order, kind), and only the writer that inserted it enqueues.
            models.UniqueConstraint(fields=["order", "kind"], name="notification_once_per_order_kind"),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.order_id} ({self.status})"
