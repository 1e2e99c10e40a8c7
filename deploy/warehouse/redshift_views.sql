-- The analytics views of tracking/sql/analytics_views.sql in Redshift's dialect, over the
-- replicated tables of migrations/. Same names, same columns, same definitions
-- (see the PostgreSQL file and docs/ANALYTICS.md for what each one means); only the
-- spelling differs. What changes, and why:
--   * Timestamps are UTC TIMESTAMP columns here: a day is TRUNC(ts), no AT TIME ZONE.
--   * Durations: DATEDIFF(ms, a, b) / 1000.0 for extract(epoch FROM b - a).
--   * No FILTER clause: COUNT(CASE WHEN ... THEN 1 END), SUM(CASE ...).
--   * Redshift allows several sort-based aggregates (PERCENTILE_CONT, MEDIAN) in one query
--     only when they sort by the same expression: the medians of different durations are
--     window functions, collapsed with SELECT DISTINCT.
--   * No DISTINCT ON, no LATERAL, no VALUES list in FROM, no named WINDOW clause, window
--     frames are ROWS only (no RANGE ... EXCLUDE GROUP): ROW_NUMBER(), GROUP BY joins,
--     CASE, repeated OVER (...) and a per-upload running maximum replace them.
--   * A ping's position arrives as two DOUBLE PRECISION columns, lat and lon:
--     ST_SetSRID(ST_MakePoint(lon, lat), 4326) builds the point (other positions arrive as
--     hex EWKB text, which ST_GeomFromEWKB() reads), and ST_DistanceSphere() measures in
--     metres on a sphere (PostGIS's geography distance is on the spheroid: the two differ
--     by up to ~0.3 %).
-- Loaded after the tables by deploy/warehouse/release.py; every statement is CREATE OR
-- REPLACE VIEW. The views are bound to their tables on purpose: Redshift then refuses a
-- DROP TABLE under them (without CASCADE), one more guard on the history.


CREATE OR REPLACE VIEW public.analytics_delivery_funnel_daily AS
SELECT DISTINCT
    TRUNC(created_at) AS day,
    COUNT(*) OVER (PARTITION BY TRUNC(created_at)) AS created,
    COUNT(assigned_at) OVER (PARTITION BY TRUNC(created_at)) AS assigned,
    COUNT(started_at) OVER (PARTITION BY TRUNC(created_at)) AS started,
    COUNT(delivered_at) OVER (PARTITION BY TRUNC(created_at)) AS delivered,
    COUNT(cancelled_at) OVER (PARTITION BY TRUNC(created_at)) AS cancelled,
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY DATEDIFF(ms, created_at, assigned_at) / 1000.0)
        OVER (PARTITION BY TRUNC(created_at)) AS median_created_to_assigned_s,
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY DATEDIFF(ms, assigned_at, started_at) / 1000.0)
        OVER (PARTITION BY TRUNC(created_at)) AS median_assigned_to_started_s,
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY DATEDIFF(ms, started_at, delivered_at) / 1000.0)
        OVER (PARTITION BY TRUNC(created_at)) AS median_started_to_delivered_s,
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY DATEDIFF(ms, created_at, delivered_at) / 1000.0)
        OVER (PARTITION BY TRUNC(created_at)) AS median_created_to_delivered_s
FROM public.orders_order;


CREATE OR REPLACE VIEW public.analytics_courier_activity_daily AS
WITH steps AS (
    SELECT
        courier_id,
        recorded_at,
        DATEDIFF(ms, LAG(recorded_at) OVER (PARTITION BY courier_id ORDER BY recorded_at, event_id), recorded_at)
            / 1000.0 AS gap_s,
        ST_DistanceSphere(
            ST_SetSRID(ST_MakePoint(
                LAG(lon) OVER (PARTITION BY courier_id ORDER BY recorded_at, event_id),
                LAG(lat) OVER (PARTITION BY courier_id ORDER BY recorded_at, event_id)
            ), 4326),
            ST_SetSRID(ST_MakePoint(lon, lat), 4326)
        ) AS step_m
    FROM public.tracking_ping
    WHERE suspect_reason IS NULL
)
SELECT
    courier_id,
    TRUNC(recorded_at) AS day,
    COUNT(*) AS pings,
    COALESCE(SUM(CASE WHEN gap_s <= 300 THEN step_m END), 0) AS distance_m,
    COALESCE(SUM(CASE WHEN gap_s <= 300 THEN gap_s END), 0) AS active_s
FROM steps
GROUP BY 1, 2;


CREATE OR REPLACE VIEW public.analytics_order_ping_count AS
SELECT
    o.id AS order_id,
    o.status,
    COUNT(p.event_id) AS pings,
    COUNT(CASE WHEN p.suspect_reason IS NULL THEN p.event_id END) AS trusted_pings,
    COUNT(CASE WHEN p.suspect_reason IS NOT NULL THEN p.event_id END) AS suspect_pings,
    MIN(p.recorded_at) AS first_ping_at,
    MAX(p.recorded_at) AS last_ping_at
FROM public.orders_order o
LEFT JOIN public.tracking_ping p ON p.order_id = o.id
GROUP BY o.id, o.status;


CREATE OR REPLACE VIEW public.analytics_order_longest_transit_gap AS
WITH trips AS (
    SELECT id AS order_id, courier_id, started_at, COALESCE(delivered_at, cancelled_at) AS ended_at
    FROM public.orders_order
    WHERE started_at IS NOT NULL AND COALESCE(delivered_at, cancelled_at) IS NOT NULL
),
moments AS (
    SELECT order_id, started_at AS moment_at FROM trips
    UNION ALL
    SELECT order_id, ended_at FROM trips
    UNION ALL
    SELECT t.order_id, p.recorded_at
    FROM trips t
    JOIN public.tracking_ping p
      ON p.courier_id = t.courier_id
     AND p.recorded_at > t.started_at
     AND p.recorded_at < t.ended_at
     AND p.suspect_reason IS NULL
),
gaps AS (
    SELECT
        order_id,
        COUNT(*) OVER (PARTITION BY order_id) - 2 AS pings_in_transit,
        LAG(moment_at) OVER (PARTITION BY order_id ORDER BY moment_at) AS gap_started_at,
        DATEDIFF(ms, LAG(moment_at) OVER (PARTITION BY order_id ORDER BY moment_at), moment_at) / 1000.0 AS gap_s
    FROM moments
),
ranked AS (
    SELECT g.*, ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY gap_s DESC, gap_started_at) AS gap_rank
    FROM gaps g
    WHERE gap_s IS NOT NULL
)
SELECT
    r.order_id, t.courier_id, t.started_at, t.ended_at, r.pings_in_transit,
    r.gap_s AS longest_gap_s, r.gap_started_at AS longest_gap_started_at
FROM ranked r
JOIN trips t ON t.order_id = r.order_id
WHERE r.gap_rank = 1;


CREATE OR REPLACE VIEW public.analytics_order_arriving_to_delivered AS
WITH arriving AS (
    SELECT o.id AS order_id, MIN(p.recorded_at) AS arriving_at
    FROM public.orders_order o
    JOIN public.tracking_ping p
      ON p.order_id = o.id
     AND p.suspect_reason IS NULL
     AND p.recorded_at >= o.started_at
     AND p.recorded_at <= o.delivered_at
     AND (p.distance_to_destination_m <= 300 OR p.eta_seconds < 120)
    GROUP BY o.id
)
SELECT
    o.id AS order_id,
    o.courier_id,
    o.started_at,
    a.arriving_at,
    o.delivered_at,
    DATEDIFF(ms, a.arriving_at, o.delivered_at) / 1000.0 AS arriving_to_delivered_s
FROM public.orders_order o
LEFT JOIN arriving a ON a.order_id = o.id
WHERE o.delivered_at IS NOT NULL AND o.started_at IS NOT NULL;


CREATE OR REPLACE VIEW public.analytics_ping_timeliness_daily AS
WITH uploads AS (
    -- One row per upload (courier, received_at), with the newest ping it carried.
    SELECT courier_id, received_at, MAX(recorded_at) AS newest
    FROM public.tracking_ping
    GROUP BY courier_id, received_at
),
seen AS (
    -- The newest ping the server had from the courier before this upload.
    SELECT
        courier_id,
        received_at,
        MAX(newest) OVER (
            PARTITION BY courier_id ORDER BY received_at ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS newest_before
    FROM uploads
),
p AS (
    SELECT
        t.recorded_at,
        DATEDIFF(ms, t.recorded_at, t.received_at) / 1000.0 AS delay_s,
        CASE WHEN t.recorded_at < s.newest_before THEN 1 ELSE 0 END AS out_of_order
    FROM public.tracking_ping t
    JOIN seen s ON s.courier_id = t.courier_id AND s.received_at = t.received_at
),
counts AS (
    SELECT
        TRUNC(recorded_at) AS day,
        COUNT(*) AS pings,
        SUM(CASE WHEN delay_s > 60 THEN 1 ELSE 0 END) AS late,
        SUM(out_of_order) AS out_of_order
    FROM p
    GROUP BY 1
),
delays AS (
    SELECT DISTINCT
        TRUNC(recorded_at) AS day,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY delay_s) OVER (PARTITION BY TRUNC(recorded_at)) AS median_delay_s,
        PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY delay_s) OVER (PARTITION BY TRUNC(recorded_at)) AS p90_delay_s
    FROM p
)
SELECT
    c.day, c.pings,
    c.late, c.late::FLOAT8 / c.pings AS late_rate,
    c.out_of_order, c.out_of_order::FLOAT8 / c.pings AS out_of_order_rate,
    d.median_delay_s, d.p90_delay_s
FROM counts c
JOIN delays d ON d.day = c.day;


CREATE OR REPLACE VIEW public.analytics_gps_accuracy_daily AS
WITH b AS (
    SELECT
        TRUNC(recorded_at) AS day,
        CASE
            WHEN accuracy_m IS NULL THEN NULL
            WHEN accuracy_m < 5 THEN 0 WHEN accuracy_m < 10 THEN 5 WHEN accuracy_m < 20 THEN 10
            WHEN accuracy_m < 50 THEN 20 WHEN accuracy_m < 100 THEN 50 ELSE 100
        END AS lower_m
    FROM public.tracking_ping
),
c AS (
    SELECT day, lower_m, COUNT(*) AS pings FROM b GROUP BY day, lower_m
)
SELECT
    day,
    lower_m AS accuracy_from_m,
    CASE lower_m WHEN 0 THEN 5 WHEN 5 THEN 10 WHEN 10 THEN 20 WHEN 20 THEN 50 WHEN 50 THEN 100 END
        AS accuracy_to_m,
    pings,
    pings::FLOAT8 / SUM(pings) OVER (PARTITION BY day) AS share
FROM c;


CREATE OR REPLACE VIEW public.analytics_eta_error AS
SELECT
    p.order_id,
    p.recorded_at,
    p.eta_seconds,
    DATEDIFF(ms, p.recorded_at, o.delivered_at) / 1000.0 AS actual_s,
    p.eta_seconds - DATEDIFF(ms, p.recorded_at, o.delivered_at) / 1000.0 AS error_s,
    FLOOR(DATEDIFF(ms, p.recorded_at, o.delivered_at) / 60000.0)::INTEGER AS minutes_to_go
FROM public.tracking_ping p
JOIN public.orders_order o ON o.id = p.order_id
WHERE o.delivered_at IS NOT NULL
  AND o.started_at IS NOT NULL
  AND p.recorded_at >= o.started_at
  AND p.recorded_at <= o.delivered_at
  AND p.eta_seconds IS NOT NULL
  AND p.suspect_reason IS NULL;


CREATE OR REPLACE VIEW public.analytics_eta_accuracy AS
WITH e AS (
    SELECT minutes_to_go, order_id, error_s, ABS(error_s) AS abs_error_s FROM public.analytics_eta_error
),
counts AS (
    SELECT minutes_to_go, COUNT(*) AS etas, COUNT(DISTINCT order_id) AS orders FROM e GROUP BY minutes_to_go
),
q AS (
    SELECT DISTINCT
        minutes_to_go,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY error_s) OVER (PARTITION BY minutes_to_go) AS median_error_s,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY abs_error_s) OVER (PARTITION BY minutes_to_go)
            AS median_abs_error_s,
        PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY abs_error_s) OVER (PARTITION BY minutes_to_go) AS p90_abs_error_s
    FROM e
)
SELECT c.minutes_to_go, c.etas, c.orders, q.median_error_s, q.median_abs_error_s, q.p90_abs_error_s
FROM counts c
JOIN q ON q.minutes_to_go = c.minutes_to_go;
