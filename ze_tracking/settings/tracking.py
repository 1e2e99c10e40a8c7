"""The tracking app's rules: batch and payload limits, partitions, the position filter, live
updates, the map and the tracking link."""

from __future__ import annotations

from ze_tracking.settings.celery import TASK_RETRY_MAX_AGE_S
from ze_tracking.settings.core import env

# --- Tracking rules: read as typed fields through tracking/rules.py, which refuses (system
# check tracking.E001) a misspelt, missing, mistyped or non-positive one.
TRACKING = {
    "MAX_BATCH_PINGS": env.int("TRACKING_MAX_BATCH_PINGS", default=500),
    "MAX_FUTURE_S": env.int("TRACKING_MAX_FUTURE_S", default=300),
    "MAX_AGE_S": env.int("TRACKING_MAX_AGE_S", default=7 * 24 * 3600),
    "MAX_SPEED_MPS": env.float("TRACKING_MAX_SPEED_MPS", default=60.0),
    "DEFAULT_SPEED_MPS": env.float("TRACKING_DEFAULT_SPEED_MPS", default=6.0),
    # A task message must stay inside SQS's 256 KiB (the queues' MaximumMessageSize,
    # deploy/ze_infra/messaging.py): the task body goes in base64 (4/3 of this) inside an
    # envelope of about 1.5 KB. tests/e2e/test_sqs_broker.py publishes a batch of this size.
    "MAX_TASK_PAYLOAD_BYTES": env.int("TRACKING_MAX_TASK_PAYLOAD_BYTES", default=188 * 1024),
    "MAX_ATTRIBUTES_BYTES": env.int("TRACKING_MAX_ATTRIBUTES_BYTES", default=2048),
    "MAX_ATTRIBUTES_DEPTH": env.int("TRACKING_MAX_ATTRIBUTES_DEPTH", default=8),
    "PARTITION_DAYS_AHEAD": env.int("TRACKING_PARTITION_DAYS_AHEAD", default=7),
    # Partition DDL waits this long for a lock, then gives way to ingest and tries again.
    "PARTITION_LOCK_TIMEOUT_MS": env.int("TRACKING_PARTITION_LOCK_TIMEOUT_MS", default=2000),
    "PARTITION_DDL_ATTEMPTS": env.int("TRACKING_PARTITION_DDL_ATTEMPTS", default=5),
    # Raw pings stay this long in PostgreSQL; the analytics copy keeps everything.
    "RETENTION_DAYS": env.int("TRACKING_RETENTION_DAYS", default=90),
    # The backoffice map greys out couriers without a ping for this long.
    "STALE_AFTER_S": env.int("TRACKING_STALE_AFTER_S", default=120),
    # The position filter (tracking/services/plausibility.py): fixes further apart than the
    # gap do not contradict each other, but agree across it at up to the gap speed (a
    # sustained average over ten minutes or more, generous for a city courier); a run of
    # this many agreeing fixes replaces a contradicting reference; accuracy counts up to the
    # cap; stored fixes read per side of a batch stretch, reaching back and ahead at most
    # the history; a fix reported this accurate (a GPS fix; network positions are tens to
    # thousands of metres) may send "arriving" with no other fix agreeing with it.
    "PLAUSIBILITY_GAP_S": env.int("TRACKING_PLAUSIBILITY_GAP_S", default=600),
    "PLAUSIBILITY_GAP_SPEED_MPS": env.float("TRACKING_PLAUSIBILITY_GAP_SPEED_MPS", default=30.0),
    "PLAUSIBILITY_RUN": env.int("TRACKING_PLAUSIBILITY_RUN", default=3),
    "PLAUSIBILITY_MAX_SKIP": env.int("TRACKING_PLAUSIBILITY_MAX_SKIP", default=8),
    "PLAUSIBILITY_MAX_ACCURACY_M": env.float("TRACKING_PLAUSIBILITY_MAX_ACCURACY_M", default=100.0),
    "PLAUSIBILITY_CONTEXT_PINGS": env.int("TRACKING_PLAUSIBILITY_CONTEXT_PINGS", default=32),
    "PLAUSIBILITY_HISTORY_S": env.int("TRACKING_PLAUSIBILITY_HISTORY_S", default=6 * 3600),
    "PLAUSIBILITY_GOOD_ACCURACY_M": env.float("TRACKING_PLAUSIBILITY_GOOD_ACCURACY_M", default=20.0),
}
# How long an event's identity is kept (tracking.models.PingEvent): a copy is accepted up to
# MAX_AGE_S late or MAX_FUTURE_S early, then may wait in the queue, retried, for
# TASK_RETRY_MAX_AGE_S. Past that, only a copy with another device time could still reach a
# worker (docs/ARCHITECTURE.md, "One event, one ping").
TRACKING["EVENT_IDENTITY_KEEP_S"] = env.int(
    "TRACKING_EVENT_IDENTITY_KEEP_S",
    default=TRACKING["MAX_AGE_S"] + TRACKING["MAX_FUTURE_S"] + TASK_RETRY_MAX_AGE_S,
)
MAP_TILE_URL = env.str("MAP_TILE_URL", default="https://tile.openstreetmap.org/{z}/{x}/{y}.png")
ARRIVING_RADIUS_M = env.float("ARRIVING_RADIUS_M", default=300.0)
ARRIVING_ETA_S = env.int("ARRIVING_ETA_S", default=120)
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# After delivery or cancellation, the tracking link shows the status only once this passed.
TRACKING_LINK_TTL_AFTER_END_S = env.int("TRACKING_LINK_TTL_AFTER_END_S", default=6 * 3600)
# The fleet socket re-reads its user's session and staff rights at most this often, before
# forwarding an update: a logout or a lost staff right closes it within this time.
FLEET_SOCKET_RECHECK_S = env.float("FLEET_SOCKET_RECHECK_S", default=5.0)
# A fleet socket that reads a live update this long after it was published gets the whole
# state instead of the backlog (tracking/consumers.py).
FLEET_SOCKET_BEHIND_S = env.float("FLEET_SOCKET_BEHIND_S", default=3.0)
# Live updates (the fleet map, the tracking page's socket) leave a worker or web process at
# most this often, each with the newest state of whatever moved meanwhile
# (tracking/broadcasts.py): the map's markers glide for longer than this anyway.
LIVE_UPDATE_INTERVAL_S = env.float("LIVE_UPDATE_INTERVAL_S", default=0.2)
TRACKING_PAGE_POLL_S = env.float("TRACKING_PAGE_POLL_S", default=5.0)
MAP_TILE_ATTRIBUTION = env.str("MAP_TILE_ATTRIBUTION", default="&copy; OpenStreetMap")
