"""The last-location tables: one row per courier and one per active order.

Both are upserted in a single statement per batch. The guard `WHERE t.recorded_at <
EXCLUDED.recorded_at` makes the newest device time win whatever the arrival order: a late
ping, a retried task or a slower worker racing a faster one never moves a location back.
Under READ COMMITTED, ON CONFLICT DO UPDATE locks the existing row and evaluates the guard
against its latest committed version, so two racing batches serialise on the row.

The one exception: a last location whose fix the position filter has since found suspect (a
glitch that was the courier's first or newest fix, overturned by the fixes that arrived after
it) is replaced by the batch's newest trusted fix even if that one is older. Each row keeps
the event id of its fix, so the exception looks up that very ping by its key: a suspect
ping of the same instant (a second event without a fix) leaves a real position in place.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.utils import timezone

from infra.db.queries import binary_execute
from tracking.services.enrichment import EnrichedPing, OrderLeg

UPSERT_SQL = """
WITH courier_rows AS (
    INSERT INTO tracking_courierlastlocation AS t
        (courier_id, location, accuracy_m, speed_mps, heading_deg, recorded_at, updated_at, event_id)
    SELECT c, ST_SetSRID(ST_MakePoint(lo, la), 4326)::geography, a, s, h, r, %s, e
    FROM unnest(%b::uuid[], %b::float8[], %b::float8[], %b::float8[],
                %b::float8[], %b::float8[], %b::timestamptz[], %b::uuid[])
         AS u(c, lo, la, a, s, h, r, e)
    ON CONFLICT (courier_id) DO UPDATE SET
        location = EXCLUDED.location, accuracy_m = EXCLUDED.accuracy_m, speed_mps = EXCLUDED.speed_mps,
        heading_deg = EXCLUDED.heading_deg, recorded_at = EXCLUDED.recorded_at, updated_at = EXCLUDED.updated_at,
        event_id = EXCLUDED.event_id
    WHERE t.recorded_at < EXCLUDED.recorded_at OR EXISTS (
        SELECT 1 FROM tracking_ping AS p
        WHERE p.courier_id = t.courier_id AND p.recorded_at = t.recorded_at AND p.event_id = t.event_id
          AND p.suspect_reason IS NOT NULL)
    RETURNING 'courier' AS kind, courier_id AS id
), order_rows AS (
    INSERT INTO tracking_orderlastlocation AS t
        (order_id, courier_id, location, accuracy_m, speed_mps, heading_deg, recorded_at, updated_at,
         distance_to_destination_m, eta_seconds, event_id)
    SELECT o, c, ST_SetSRID(ST_MakePoint(lo, la), 4326)::geography, a, s, h, r, %s, d, eta, e
    FROM unnest(%b::uuid[], %b::uuid[], %b::float8[], %b::float8[],
                %b::float8[], %b::float8[], %b::float8[], %b::timestamptz[],
                %b::float8[], %b::int4[], %b::uuid[])
         AS u(o, c, lo, la, a, s, h, r, d, eta, e)
    ON CONFLICT (order_id) DO UPDATE SET
        courier_id = EXCLUDED.courier_id, location = EXCLUDED.location, accuracy_m = EXCLUDED.accuracy_m,
        speed_mps = EXCLUDED.speed_mps, heading_deg = EXCLUDED.heading_deg, recorded_at = EXCLUDED.recorded_at,
        updated_at = EXCLUDED.updated_at, distance_to_destination_m = EXCLUDED.distance_to_destination_m,
        eta_seconds = EXCLUDED.eta_seconds, event_id = EXCLUDED.event_id
    WHERE t.recorded_at < EXCLUDED.recorded_at OR EXISTS (
        SELECT 1 FROM tracking_ping AS p
        WHERE p.courier_id = t.courier_id AND p.recorded_at = t.recorded_at AND p.event_id = t.event_id
          AND p.suspect_reason IS NOT NULL)
    RETURNING 'order' AS kind, order_id AS id
)
SELECT kind, id FROM courier_rows UNION ALL SELECT kind, id FROM order_rows
"""


@dataclass
class LastLocationsMoved:
    courier_ids: list[uuid.UUID]
    order_ids: list[uuid.UUID]


def last_locations_upsert(*, pings: list[EnrichedPing]) -> LastLocationsMoved:
    """Move each courier's and each order's last location to its newest trusted ping of the
    batch (suspect pings never move it). Returns what actually moved."""
    newest_by_courier: dict[uuid.UUID, EnrichedPing] = {}
    newest_by_order: dict[uuid.UUID, tuple[EnrichedPing, OrderLeg]] = {}
    for ping in pings:  # sorted by recorded_at, so later ones win
        if ping.suspect_reason:
            continue
        newest_by_courier[ping.courier_id] = ping
        for leg in ping.legs:
            newest_by_order[leg.order_id] = (ping, leg)
    if not newest_by_courier:
        return LastLocationsMoved([], [])
    # Rows in key order, so two batches touching the same rows lock them in the same order
    # and cannot deadlock.
    couriers = [newest_by_courier[k] for k in sorted(newest_by_courier)]
    orders = [newest_by_order[k] for k in sorted(newest_by_order)]
    now = timezone.now()
    # In the statement's order (its unnest lists name them); `now` once for each table.
    params = [
        now,
        [p.courier_id for p in couriers],
        [p.lon for p in couriers],
        [p.lat for p in couriers],
        [p.accuracy_m for p in couriers],
        [p.speed_mps for p in couriers],
        [p.heading_deg for p in couriers],
        [p.recorded_at for p in couriers],
        [p.event_id for p in couriers],
        now,
        [leg.order_id for _, leg in orders],
        [p.courier_id for p, _ in orders],
        [p.lon for p, _ in orders],
        [p.lat for p, _ in orders],
        [p.accuracy_m for p, _ in orders],
        [p.speed_mps for p, _ in orders],
        [p.heading_deg for p, _ in orders],
        [p.recorded_at for p, _ in orders],
        [leg.distance_to_destination_m for _, leg in orders],
        [leg.eta_seconds for _, leg in orders],
        [p.event_id for p, _ in orders],
    ]
    rows = binary_execute(UPSERT_SQL, params).fetchall()
    return LastLocationsMoved(
        courier_ids=[row[1] for row in rows if row[0] == "courier"],
        order_ids=[row[1] for row in rows if row[0] == "order"],
    )
