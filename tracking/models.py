from __future__ import annotations

from django.contrib.gis.db import models
from django.contrib.postgres.indexes import BrinIndex


class Ping(models.Model):
    """One GPS position of a courier, as the app sent it plus what enrichment added.

    The table is partitioned by day on `recorded_at` (migration 0001 writes the DDL; the
    partitions are created ahead by `tracking.services.partitions`). Its primary key
    (courier_id, recorded_at, event_id) is, led by (courier_id, recorded_at), the index every
    trail read uses; PostgreSQL requires the partition key in it. A ping's identity is
    (courier_id, event_id) (two couriers may reuse an event id): `PingEvent` holds it while
    copies of an event can still arrive, since a unique key on a partitioned table must hold
    the partition key. Django only needs a column to look rows up by, hence `event_id` as
    its primary key in the model.

    The stored columns are also listed in `tracking.columns`, from which the worker's insert
    and the export are generated (a test holds the two lists equal).
    """

    event_id = models.UUIDField(primary_key=True)
    recorded_at = models.DateTimeField()
    received_at = models.DateTimeField()
    # No database foreign keys: the writer has validated both, and FK checks would cost
    # one index probe per row on the hottest table.
    courier = models.ForeignKey("couriers.Courier", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    order = models.ForeignKey(
        "orders.Order", on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )
    # The position as two plain float8 degrees (WGS84), not a geography point: the same
    # values in 16 bytes instead of 29 (and their alignment), on the biggest table. Nothing
    # indexes or queries pings by place; distances between pings are computed from the floats
    # (`tracking.geo`) or by building the point in SQL (ST_MakePoint(lon, lat)::geography).
    lat = models.FloatField()
    lon = models.FloatField()
    # Compact types on the biggest table: GPS noise is far above float4's precision, a
    # heading to the degree and a distance to the metre are all anyone reads.
    accuracy_m = models.FloatField(null=True, blank=True)
    speed_mps = models.FloatField(null=True, blank=True)
    heading_deg = models.SmallIntegerField(null=True, blank=True)
    distance_to_destination_m = models.IntegerField(null=True, blank=True)
    eta_seconds = models.IntegerField(null=True, blank=True)
    # Set when the position is implausible (see enrichment); such pings are kept for
    # analysis but never move a last location.
    suspect_reason = models.CharField(max_length=32, null=True, blank=True)
    # NULL rather than {} when the app sent none: a NULL costs no bytes.
    attributes = models.JSONField(null=True, blank=True)

    class Meta:
        # The platform's process metrics (/metrics) belong to no model: declared on the
        # pings, the stream they mostly measure. Raw pings are Django's `view_ping`.
        permissions = [("view_metrics", "Can read the process metrics")]
        # Declared here for the record; migration 0001's DDL creates them with the table.
        constraints = [
            models.CheckConstraint(condition=models.Q(lat__gte=-90, lat__lte=90), name="tracking_ping_lat_range"),
            models.CheckConstraint(condition=models.Q(lon__gte=-180, lon__lte=180), name="tracking_ping_lon_range"),
        ]

    def __str__(self) -> str:
        return f"{self.courier_id} @ {self.recorded_at:%Y-%m-%d %H:%M:%S}"


class PingEvent(models.Model):
    """The identity of each event stored in the acceptance window: one row per (courier,
    event id), written by the same statement as its ping (`tracking.services.storage`).

    A copy of the event with another device time (resent with the time in milliseconds, or
    after the device corrected its clock) meets this row and is not stored, whichever
    day's partition it would land in; two workers racing on one event store it once. Rows
    older than TRACKING["EVENT_IDENTITY_KEEP_S"] are pruned (`ping_events_prune`), so the
    table holds the window's events only (docs/ARCHITECTURE.md, "One event, one ping").
    """

    pk = models.CompositePrimaryKey("courier_id", "event_id")
    courier_id = models.UUIDField()
    event_id = models.UUIDField()
    # The stored copy's device time: what the pruning reads.
    recorded_at = models.DateTimeField()

    class Meta:
        # BRIN: identities arrive in about device-time order, so block ranges summarise them
        # well, for a few pages in all; a b-tree would add an entry per event to every insert.
        indexes = [BrinIndex(fields=["recorded_at"], name="ping_event_recorded_at")]

    def __str__(self) -> str:
        return f"{self.courier_id} {self.event_id}"


class LastLocationFields(models.Model):
    location = models.PointField(geography=True, srid=4326)
    accuracy_m = models.FloatField(null=True, blank=True)
    speed_mps = models.FloatField(null=True, blank=True)
    heading_deg = models.FloatField(null=True, blank=True)
    recorded_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    # The ping the position came from: with the courier and `recorded_at`, that ping's key.
    # Only if the position filter later finds this very fix suspect may an older fix replace
    # the row (tracking/services/last_location.py); another ping of the same instant does
    # not count. NULL on a row whose ping was already gone when the column was added.
    event_id = models.UUIDField(null=True, blank=True)

    class Meta:
        abstract = True


class CourierLastLocation(LastLocationFields):
    courier = models.OneToOneField(
        "couriers.Courier", on_delete=models.CASCADE, primary_key=True, related_name="last_location"
    )

    class Meta:
        indexes = [models.Index(fields=["recorded_at"])]


class OrderLastLocation(LastLocationFields):
    order = models.OneToOneField(
        "orders.Order", on_delete=models.CASCADE, primary_key=True, related_name="last_location"
    )
    courier = models.ForeignKey("couriers.Courier", on_delete=models.CASCADE, related_name="+")
    distance_to_destination_m = models.FloatField(null=True, blank=True)
    eta_seconds = models.IntegerField(null=True, blank=True)


class DeadLetterFields(models.Model):
    """What every dead letter keeps: its newest error, how often it failed, and when it was
    replayed once the cause was fixed."""

    error_class = models.CharField(max_length=200)
    error_message = models.TextField()
    failures = models.PositiveIntegerField(default=1)
    first_failed_at = models.DateTimeField()
    last_failed_at = models.DateTimeField()
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class PingDeadLetter(DeadLetterFields):
    """A ping the database refused (a number outside its column, a string jsonb rejects),
    kept with its error so its batch could be stored without it. Replayed, once the cause is
    fixed, by `manage.py replay_dead_letters` or the admin action.

    One row per event, as pings are (courier, event id): a redelivered batch, a second
    failure or a copy of the event with its device time written otherwise updates the row
    (`failures`, `last_failed_at`) instead of adding one; the row keeps the copy first
    refused.
    """

    courier = models.ForeignKey("couriers.Courier", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    # Text: the value may be what made the ping fail. An event id that reads as a UUID is
    # kept in its canonical form, so one event written in two cases is one row.
    event_id = models.CharField(max_length=64)
    # The device time as sent, for the record (not part of the key).
    recorded_at = models.CharField(max_length=64)
    received_at = models.DateTimeField()
    # The ping as the worker received it, in ASCII-escaped JSON text: jsonb would refuse the
    # very values (a lone surrogate, a NUL) that may have sent it here.
    ping = models.TextField()

    class Meta:
        # Both kinds of dead letters: replaying them stores what the database refused.
        permissions = [("replay_dead_letters", "Can replay dead letters")]
        constraints = [models.UniqueConstraint(fields=["courier", "event_id"], name="ping_dead_letter_unique")]
        indexes = [models.Index(fields=["-last_failed_at"], name="ping_dead_letter_last_failed")]

    def __str__(self) -> str:
        return f"{self.courier_id} {self.event_id} ({self.error_class})"


class PingBatchDeadLetter(DeadLetterFields):
    """A whole batch message the worker could not record and that no retry would help: its
    body could not be decoded, its task could not read it, it failed for a reason no single
    ping explains, or its worker died with it every time it was delivered. Written in its
    own transaction before the message is acknowledged, so nothing accepted is dropped
    without a row here. Replayed by `manage.py replay_dead_letters` or the admin action.

    One row per task message (`task_id`): a message delivered again after a failure updates
    its row (`failures`, `last_failed_at`) instead of adding one.
    """

    task_id = models.CharField(max_length=255, unique=True)
    task_name = models.CharField(max_length=255)
    # No foreign key: the courier id is whatever the message said, if anything.
    courier_id = models.UUIDField(null=True, blank=True)
    # The task's keyword arguments as ASCII-escaped JSON text when they could be decoded
    # (jsonb would refuse the lone surrogate or NUL that may have sent them here); otherwise
    # empty, and `body` holds the message body as received.
    kwargs = models.TextField(blank=True, default="")
    body = models.TextField(blank=True, default="")
    content_type = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["-last_failed_at"], name="ping_batch_dead_letter_last")]

    def __str__(self) -> str:
        return f"{self.task_name}[{self.task_id}] ({self.error_class})"
