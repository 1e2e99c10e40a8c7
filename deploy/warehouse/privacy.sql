-- The warehouse's privacy rule: a consumer's exact destination is kept 90 days, as long as
-- Aurora keeps the pings (TRACKING_RETENTION_DAYS); after that it is ROUNDED to 3 decimal
-- places of a degree (about 110 m north-south and 100 m east-west in Sao Paulo), a block
-- with many doors instead of one address.
--
-- Rounded, not dropped: analysts keep delivery zones, demand maps and distances for the
-- whole history (the error is at most ~75 m), which a NULL would lose, while the point no
-- longer names a home. Nothing is deleted: the rows and their times stay.
--
-- A destination hides in four places, all rounded here:
--   orders_order.destination                      the address itself;
--   orders_orderevent.location                    the courier's actions (delivered at the door);
--   tracking_orderlastlocation.location           the trip's last position (the door);
--   tracking_ping.lat, .lon where the ping was within 500 m of its order's destination
--                                                 (the end of the trail points at the door;
--                                                 the rest of the trail is kept exact, so
--                                                 distances driven stay right).
-- The first three are hex EWKB text, rounded through a point; a ping's position is two
-- DOUBLE PRECISION columns, rounded as they are.
--
-- Run daily by EventBridge Scheduler through the Redshift Data API
-- (deploy/ze_infra/analytics.py `Analytics`); each statement is one entry of a batch, run in
-- one transaction. Idempotent: a row already rounded is not rewritten (the comparison
-- with its rounded self), so a row DMS rewrites later (an order edited after 90 days) is
-- rounded again the next day. Pings are immutable once their Aurora partition is dropped,
-- so their statement looks only at the week before the cutoff: a week of missed runs is
-- caught up; after a longer outage run it once without the lower bound. A batch that
-- fails (a serialization conflict with a DMS apply, say) changes nothing and is retried by
-- the next day's run; its failure is an EventBridge event ("Redshift Data Statement
-- Status Change", state FAILED).

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

UPDATE public.tracking_ping
SET lat = ROUND(lat, 3), lon = ROUND(lon, 3)
WHERE recorded_at < DATEADD(day, -90, GETDATE())
  AND recorded_at >= DATEADD(day, -97, GETDATE())
  AND distance_to_destination_m < 500
  AND (lat <> ROUND(lat, 3) OR lon <> ROUND(lon, 3));
