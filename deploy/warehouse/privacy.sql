-- The warehouse's privacy rule: a consumer's exact destination is kept 90 days, as long as
-- Aurora keeps the pings (TRACKING_RETENTION_DAYS); after that the warehouse knows it only
-- ROUNDED to 3 decimal places of a degree (about 110 m north-south and 100 m east-west in
-- Sao Paulo: a grid cell, a block with many doors instead of one address), and no column
-- tells more than that cell.
--
-- Rounded, not dropped: analysts keep delivery zones, demand maps, distances driven and
-- "arriving" times for the whole history (the error is at most ~75 m), which a NULL would
-- lose. Nothing is deleted: the rows and their times stay.
--
-- Where a destination hides, and what happens to it:
--   orders_order.destination               rounded (the address itself);
--   orders_orderevent.location             rounded (the courier's actions: delivered at the door);
--   tracking_orderlastlocation.location    rounded (the trip's last position: the door),
--     .distance_to_destination_m, .eta_seconds   recomputed from the rounded points;
--   tracking_courierlastlocation.location  rounded once 90 days old (a courier last seen at a door);
--   tracking_ping.lat, .lon                rounded where the ping lies within 500 m of the
--                                          rounded destination of an order of its courier,
--                                          from the order's assignment to 2 hours after it
--                                          ended: the approach AND the departure leg (the
--                                          pings after the delivery carry the next order or
--                                          none). The rest of the trail stays exact, so
--                                          distances driven stay right;
--   tracking_ping.distance_to_destination_m, .eta_seconds
--                                          recomputed from the ping's stored position to the
--                                          order's ROUNDED destination (the ETA scaled by the
--                                          same ratio). Left exact, three pings with exact
--                                          positions and distances trilaterate the door.
-- Every derived value is computed from the rounded destination, never from the exact one,
-- so nothing (not even where the 500 m zone starts) can be inverted back to the door.
-- The first three are hex EWKB text, rounded through a point; a ping's position is two
-- DOUBLE PRECISION columns, rounded as they are. The statements run in this order: the
-- destinations are rounded first, and everything after reads the rounded ones.
--
-- Run daily by EventBridge Scheduler through the Redshift Data API
-- (deploy/ze_infra/analytics.py `Analytics`); each statement is one entry of a batch, run in
-- one transaction. Idempotent: a row already processed is not rewritten (the comparison
-- with its processed self), so a row DMS rewrites later (an order edited after 90 days) is
-- processed again the next day. Pings are immutable once their Aurora partition is dropped,
-- so their statements look only at the week before the cutoff: a week of missed runs is
-- caught up; after a longer outage run it once without the lower bound. A batch that
-- fails (a serialization conflict with a DMS apply, say) changes nothing and is retried by
-- the next day's run; its failure ("Redshift Data Statement Status Change", state FAILED)
-- and a failed scheduler call reach the alarm topic (deploy/ze_infra/monitoring.py).
-- deploy/tests and tests/tracking/test_warehouse_privacy.py run this file on PostGIS.

UPDATE public.orders_order
SET destination = ST_AsHexEWKB(ST_SetSRID(ST_MakePoint(
        ROUND(ST_X(ST_GeomFromEWKB(destination)), 3), ROUND(ST_Y(ST_GeomFromEWKB(destination)), 3)), 4326))
WHERE created_at < DATEADD(day, -90, GETDATE())
  AND destination <> ST_AsHexEWKB(ST_SetSRID(ST_MakePoint(
        ROUND(ST_X(ST_GeomFromEWKB(destination)), 3), ROUND(ST_Y(ST_GeomFromEWKB(destination)), 3)), 4326));

UPDATE public.orders_orderevent
SET location = ST_AsHexEWKB(ST_SetSRID(ST_MakePoint(
        ROUND(ST_X(ST_GeomFromEWKB(location)), 3), ROUND(ST_Y(ST_GeomFromEWKB(location)), 3)), 4326))
WHERE recorded_at < DATEADD(day, -90, GETDATE())
  AND location IS NOT NULL
  AND location <> ST_AsHexEWKB(ST_SetSRID(ST_MakePoint(
        ROUND(ST_X(ST_GeomFromEWKB(location)), 3), ROUND(ST_Y(ST_GeomFromEWKB(location)), 3)), 4326));

UPDATE public.tracking_orderlastlocation
SET location = ST_AsHexEWKB(ST_SetSRID(ST_MakePoint(
        ROUND(ST_X(ST_GeomFromEWKB(location)), 3), ROUND(ST_Y(ST_GeomFromEWKB(location)), 3)), 4326))
WHERE recorded_at < DATEADD(day, -90, GETDATE())
  AND location <> ST_AsHexEWKB(ST_SetSRID(ST_MakePoint(
        ROUND(ST_X(ST_GeomFromEWKB(location)), 3), ROUND(ST_Y(ST_GeomFromEWKB(location)), 3)), 4326));

UPDATE public.tracking_orderlastlocation
SET distance_to_destination_m = ROUND(ST_DistanceSphere(ST_GeomFromEWKB(location), ST_GeomFromEWKB(o.destination))),
    eta_seconds = CASE WHEN distance_to_destination_m > 0
        THEN ROUND(eta_seconds * ROUND(ST_DistanceSphere(ST_GeomFromEWKB(location), ST_GeomFromEWKB(o.destination)))
                   / distance_to_destination_m)
        ELSE eta_seconds END
FROM public.orders_order o
WHERE tracking_orderlastlocation.order_id = o.id
  AND tracking_orderlastlocation.recorded_at < DATEADD(day, -90, GETDATE())
  AND o.created_at < DATEADD(day, -90, GETDATE())
  AND distance_to_destination_m IS NOT NULL
  AND distance_to_destination_m <> ROUND(ST_DistanceSphere(ST_GeomFromEWKB(location), ST_GeomFromEWKB(o.destination)));

UPDATE public.tracking_courierlastlocation
SET location = ST_AsHexEWKB(ST_SetSRID(ST_MakePoint(
        ROUND(ST_X(ST_GeomFromEWKB(location)), 3), ROUND(ST_Y(ST_GeomFromEWKB(location)), 3)), 4326))
WHERE recorded_at < DATEADD(day, -90, GETDATE())
  AND location <> ST_AsHexEWKB(ST_SetSRID(ST_MakePoint(
        ROUND(ST_X(ST_GeomFromEWKB(location)), 3), ROUND(ST_Y(ST_GeomFromEWKB(location)), 3)), 4326));

-- The courier's pings near the destination, on the way there and on the way out.
UPDATE public.tracking_ping
SET lat = ROUND(lat, 3), lon = ROUND(lon, 3)
FROM public.orders_order o
WHERE tracking_ping.courier_id = o.courier_id
  AND tracking_ping.recorded_at < DATEADD(day, -90, GETDATE())
  AND tracking_ping.recorded_at >= DATEADD(day, -97, GETDATE())
  AND o.created_at < DATEADD(day, -90, GETDATE())
  AND tracking_ping.recorded_at >= COALESCE(o.assigned_at, o.created_at)
  AND tracking_ping.recorded_at <= DATEADD(hour, 2, COALESCE(o.delivered_at, o.cancelled_at, o.updated_at))
  AND ST_DistanceSphere(ST_SetSRID(ST_MakePoint(lon, lat), 4326), ST_GeomFromEWKB(o.destination)) < 500
  AND (lat <> ROUND(lat, 3) OR lon <> ROUND(lon, 3));

-- Pings filed under the order by a courier it was later taken from.
UPDATE public.tracking_ping
SET lat = ROUND(lat, 3), lon = ROUND(lon, 3)
FROM public.orders_order o
WHERE tracking_ping.order_id = o.id
  AND tracking_ping.recorded_at < DATEADD(day, -90, GETDATE())
  AND tracking_ping.recorded_at >= DATEADD(day, -97, GETDATE())
  AND o.created_at < DATEADD(day, -90, GETDATE())
  AND ST_DistanceSphere(ST_SetSRID(ST_MakePoint(lon, lat), 4326), ST_GeomFromEWKB(o.destination)) < 500
  AND (lat <> ROUND(lat, 3) OR lon <> ROUND(lon, 3));

UPDATE public.tracking_ping
SET distance_to_destination_m = ROUND(ST_DistanceSphere(ST_SetSRID(ST_MakePoint(lon, lat), 4326), ST_GeomFromEWKB(o.destination))),
    eta_seconds = CASE WHEN distance_to_destination_m > 0
        THEN ROUND(eta_seconds * ROUND(ST_DistanceSphere(ST_SetSRID(ST_MakePoint(lon, lat), 4326), ST_GeomFromEWKB(o.destination)))
                   / distance_to_destination_m)
        ELSE eta_seconds END
FROM public.orders_order o
WHERE tracking_ping.order_id = o.id
  AND tracking_ping.recorded_at < DATEADD(day, -90, GETDATE())
  AND tracking_ping.recorded_at >= DATEADD(day, -97, GETDATE())
  AND o.created_at < DATEADD(day, -90, GETDATE())
  AND distance_to_destination_m IS NOT NULL
  AND distance_to_destination_m <> ROUND(ST_DistanceSphere(ST_SetSRID(ST_MakePoint(lon, lat), 4326), ST_GeomFromEWKB(o.destination)));
