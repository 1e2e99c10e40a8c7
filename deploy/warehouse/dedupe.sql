-- One row per primary key in every replicated table: `release.py STAGE dedupe`, with the
-- DMS task stopped, after the first full load and after any "reload table".
--
-- Why copies appear: Redshift does not enforce primary keys, and the task loads into
-- tables it never empties (TargetTablePrepMode DO_NOTHING). A row inserted while its table
-- is in full load can arrive twice (in the load and as a cached change), and a reloaded
-- table is appended to what it held. A later UPDATE heals its row (batch apply deletes by
-- key, then inserts), but pings and order events are never updated.
--
-- Steps, per table: first delete the copies older than another copy of the same key
-- (tables whose rows change: the newest by their clock column wins); what remains twice
-- are identical copies, replaced by one each (SELECT DISTINCT). Runs in one transaction
-- (a Data API batch). Every statement is valid PostgreSQL too:
-- tests/tracking/test_replication.py runs this file.

-- Rows that change: the newest copy wins.
DELETE FROM public.orders_order WHERE EXISTS (
    SELECT 1 FROM public.orders_order newer
    WHERE newer.id = orders_order.id AND newer.updated_at > orders_order.updated_at
);
DELETE FROM public.orders_notification WHERE EXISTS (
    SELECT 1 FROM public.orders_notification newer
    WHERE newer.id = orders_notification.id AND newer.attempts > orders_notification.attempts
);
DELETE FROM public.tracking_orderlastlocation WHERE EXISTS (
    SELECT 1 FROM public.tracking_orderlastlocation newer
    WHERE newer.order_id = tracking_orderlastlocation.order_id
      AND newer.updated_at > tracking_orderlastlocation.updated_at
);
DELETE FROM public.tracking_courierlastlocation WHERE EXISTS (
    SELECT 1 FROM public.tracking_courierlastlocation newer
    WHERE newer.courier_id = tracking_courierlastlocation.courier_id
      AND newer.updated_at > tracking_courierlastlocation.updated_at
);

-- Identical copies: one each.
CREATE TEMP TABLE dedupe_tracking_ping AS
SELECT DISTINCT p.* FROM public.tracking_ping p
JOIN (
    SELECT courier_id, recorded_at, event_id FROM public.tracking_ping
    GROUP BY courier_id, recorded_at, event_id HAVING COUNT(*) > 1
) k ON k.courier_id = p.courier_id AND k.recorded_at = p.recorded_at AND k.event_id = p.event_id;
DELETE FROM public.tracking_ping USING dedupe_tracking_ping d
WHERE tracking_ping.courier_id = d.courier_id AND tracking_ping.recorded_at = d.recorded_at
  AND tracking_ping.event_id = d.event_id;
INSERT INTO public.tracking_ping SELECT * FROM dedupe_tracking_ping;
DROP TABLE dedupe_tracking_ping;

CREATE TEMP TABLE dedupe_orders_order AS
SELECT DISTINCT t.* FROM public.orders_order t
JOIN (SELECT id FROM public.orders_order GROUP BY id HAVING COUNT(*) > 1) k ON k.id = t.id;
DELETE FROM public.orders_order USING dedupe_orders_order d WHERE orders_order.id = d.id;
INSERT INTO public.orders_order SELECT * FROM dedupe_orders_order;
DROP TABLE dedupe_orders_order;

CREATE TEMP TABLE dedupe_orders_orderevent AS
SELECT DISTINCT t.* FROM public.orders_orderevent t
JOIN (SELECT id FROM public.orders_orderevent GROUP BY id HAVING COUNT(*) > 1) k ON k.id = t.id;
DELETE FROM public.orders_orderevent USING dedupe_orders_orderevent d WHERE orders_orderevent.id = d.id;
INSERT INTO public.orders_orderevent SELECT * FROM dedupe_orders_orderevent;
DROP TABLE dedupe_orders_orderevent;

CREATE TEMP TABLE dedupe_orders_notification AS
SELECT DISTINCT t.* FROM public.orders_notification t
JOIN (SELECT id FROM public.orders_notification GROUP BY id HAVING COUNT(*) > 1) k ON k.id = t.id;
DELETE FROM public.orders_notification USING dedupe_orders_notification d WHERE orders_notification.id = d.id;
INSERT INTO public.orders_notification SELECT * FROM dedupe_orders_notification;
DROP TABLE dedupe_orders_notification;

CREATE TEMP TABLE dedupe_couriers_courier AS
SELECT DISTINCT t.* FROM public.couriers_courier t
JOIN (SELECT id FROM public.couriers_courier GROUP BY id HAVING COUNT(*) > 1) k ON k.id = t.id;
DELETE FROM public.couriers_courier USING dedupe_couriers_courier d WHERE couriers_courier.id = d.id;
INSERT INTO public.couriers_courier SELECT * FROM dedupe_couriers_courier;
DROP TABLE dedupe_couriers_courier;

CREATE TEMP TABLE dedupe_tracking_orderlastlocation AS
SELECT DISTINCT t.* FROM public.tracking_orderlastlocation t
JOIN (SELECT order_id FROM public.tracking_orderlastlocation GROUP BY order_id HAVING COUNT(*) > 1) k
  ON k.order_id = t.order_id;
DELETE FROM public.tracking_orderlastlocation USING dedupe_tracking_orderlastlocation d
WHERE tracking_orderlastlocation.order_id = d.order_id;
INSERT INTO public.tracking_orderlastlocation SELECT * FROM dedupe_tracking_orderlastlocation;
DROP TABLE dedupe_tracking_orderlastlocation;

CREATE TEMP TABLE dedupe_tracking_courierlastlocation AS
SELECT DISTINCT t.* FROM public.tracking_courierlastlocation t
JOIN (SELECT courier_id FROM public.tracking_courierlastlocation GROUP BY courier_id HAVING COUNT(*) > 1) k
  ON k.courier_id = t.courier_id;
DELETE FROM public.tracking_courierlastlocation USING dedupe_tracking_courierlastlocation d
WHERE tracking_courierlastlocation.courier_id = d.courier_id;
INSERT INTO public.tracking_courierlastlocation SELECT * FROM dedupe_tracking_courierlastlocation;
DROP TABLE dedupe_tracking_courierlastlocation;
