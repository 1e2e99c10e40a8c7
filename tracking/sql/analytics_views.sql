-- Analytics views over the operational schema (PostgreSQL + PostGIS).
--
-- One view per metric; docs/ANALYTICS.md shows an example query for each. The same
-- queries in Redshift's dialect live in deploy/warehouse/redshift_views.sql.
--
-- Conventions:
--   * Days are UTC calendar days (`recorded_at` / `created_at` at time zone 'UTC').
--   * Durations are seconds (double precision), medians are percentile_cont(0.5).
--   * Order timestamps `assigned_at`, `started_at`, `delivered_at`, `cancelled_at` are the
--     device times of the courier's actions; `created_at` is the server's.
--   * Pings flagged by enrichment (`suspect_reason IS NOT NULL`, an implausible jump) are
--     left out of every position-based metric: the product never moves a marker with them.
--   * A ping's position is two float8 columns, `lat` and `lon` (WGS84 degrees); a distance
--     builds the geography point, ST_MakePoint(lon, lat)::geography (SRID 4326).
--   * A courier's position on a trip is the courier's pings, not only the pings filed under
--     the order: a courier carrying two orders files each ping under one of them.
--
-- Every statement is CREATE OR REPLACE VIEW, so the file can be loaded again.


-- analytics_delivery_funnel_daily
-- Orders created per UTC day, how many reached each step, and the median time between
-- consecutive steps. A step's count includes orders that later were cancelled (an order
-- cancelled after assignment counts as assigned and as cancelled).
CREATE OR REPLACE VIEW analytics_delivery_funnel_daily AS
SELECT
    (o.created_at AT TIME ZONE 'UTC')::date AS day,
    count(*) AS created,
    count(o.assigned_at) AS assigned,
    count(o.started_at) AS started,
    count(o.delivered_at) AS delivered,
    count(o.cancelled_at) AS cancelled,
    percentile_cont(0.5) WITHIN GROUP (
        ORDER BY extract(epoch FROM o.assigned_at - o.created_at)
    ) AS median_created_to_assigned_s,
    percentile_cont(0.5) WITHIN GROUP (
        ORDER BY extract(epoch FROM o.started_at - o.assigned_at)
    ) AS median_assigned_to_started_s,
    percentile_cont(0.5) WITHIN GROUP (
        ORDER BY extract(epoch FROM o.delivered_at - o.started_at)
    ) AS median_started_to_delivered_s,
    percentile_cont(0.5) WITHIN GROUP (
        ORDER BY extract(epoch FROM o.delivered_at - o.created_at)
    ) AS median_created_to_delivered_s
FROM orders_order o
GROUP BY 1;


-- analytics_courier_activity_daily
-- Per courier and UTC day: distance driven and active time, from consecutive trusted
-- pings. A gap longer than 300 s between two pings (app closed, phone off, no coverage
-- for long) ends a stretch of activity: neither its time nor its straight-line jump
-- counts. Distance is the geodesic distance between consecutive positions (metres), an
-- underestimate on curved streets. A stretch that crosses midnight is split at the pings:
-- a pair belongs to the day of its later ping.
CREATE OR REPLACE VIEW analytics_courier_activity_daily AS
WITH steps AS (
    SELECT
        p.courier_id,
        p.recorded_at,
        extract(epoch FROM p.recorded_at - lag(p.recorded_at) OVER w) AS gap_s,
        ST_Distance(ST_MakePoint(p.lon, p.lat)::geography, lag(ST_MakePoint(p.lon, p.lat)::geography) OVER w) AS step_m
    FROM tracking_ping p
    WHERE p.suspect_reason IS NULL
    WINDOW w AS (PARTITION BY p.courier_id ORDER BY p.recorded_at, p.event_id)
)
SELECT
    courier_id,
    (recorded_at AT TIME ZONE 'UTC')::date AS day,
    count(*) AS pings,
    coalesce(sum(step_m) FILTER (WHERE gap_s <= 300), 0) AS distance_m,
    coalesce(sum(gap_s) FILTER (WHERE gap_s <= 300), 0) AS active_s
FROM steps
GROUP BY 1, 2;


-- analytics_order_ping_count
-- Per order: the pings filed under it (trusted and flagged) and the time they span.
-- Orders without a single ping appear with zero.
CREATE OR REPLACE VIEW analytics_order_ping_count AS
SELECT
    o.id AS order_id,
    o.status,
    count(p.event_id) AS pings,
    count(p.event_id) FILTER (WHERE p.suspect_reason IS NULL) AS trusted_pings,
    count(p.event_id) FILTER (WHERE p.suspect_reason IS NOT NULL) AS suspect_pings,
    min(p.recorded_at) AS first_ping_at,
    max(p.recorded_at) AS last_ping_at
FROM orders_order o
LEFT JOIN tracking_ping p ON p.order_id = o.id
GROUP BY o.id, o.status;


-- analytics_order_longest_transit_gap
-- Per order whose trip is over (started, then delivered or cancelled): the longest time
-- without a position from the courier while the order was in transit. The trip's start
-- and end count as bounds, so a trip with no ping at all has one gap, start to end.
-- Long gaps are where the consumer's map froze.
CREATE OR REPLACE VIEW analytics_order_longest_transit_gap AS
WITH trips AS (
    SELECT
        o.id AS order_id,
        o.courier_id,
        o.started_at,
        coalesce(o.delivered_at, o.cancelled_at) AS ended_at
    FROM orders_order o
    WHERE o.started_at IS NOT NULL
      AND coalesce(o.delivered_at, o.cancelled_at) IS NOT NULL
),
moments AS (
    SELECT order_id, started_at AS moment_at FROM trips
    UNION ALL
    SELECT order_id, ended_at FROM trips
    UNION ALL
    SELECT t.order_id, p.recorded_at
    FROM trips t
    JOIN tracking_ping p
      ON p.courier_id = t.courier_id
     AND p.recorded_at > t.started_at
     AND p.recorded_at < t.ended_at
     AND p.suspect_reason IS NULL
),
gaps AS (
    SELECT
        order_id,
        count(*) OVER (PARTITION BY order_id) - 2 AS pings_in_transit,
        lag(moment_at) OVER (PARTITION BY order_id ORDER BY moment_at) AS gap_started_at,
        extract(epoch FROM moment_at - lag(moment_at) OVER (PARTITION BY order_id ORDER BY moment_at)) AS gap_s
    FROM moments
)
SELECT DISTINCT ON (g.order_id)
    g.order_id,
    t.courier_id,
    t.started_at,
    t.ended_at,
    g.pings_in_transit,
    g.gap_s AS longest_gap_s,
    g.gap_started_at AS longest_gap_started_at
FROM gaps g
JOIN trips t ON t.order_id = g.order_id
WHERE g.gap_s IS NOT NULL
ORDER BY g.order_id, g.gap_s DESC, g.gap_started_at;


-- analytics_order_arriving_to_delivered
-- Per delivered order: when the courier was first "arriving" and how long the handover
-- took from there. Arriving is the rule the product notifies on (tracking/services/
-- ingest.py `arriving_order_ids`, defaults ARRIVING_RADIUS_M = 300 and ARRIVING_ETA_S =
-- 120): the first trusted ping filed under the order, recorded once the delivery started,
-- within 300 m of the destination or under 120 s away. Orders never seen arriving (no
-- ping close enough) have NULL times: count them, they are a tracking gap too.
CREATE OR REPLACE VIEW analytics_order_arriving_to_delivered AS
SELECT
    o.id AS order_id,
    o.courier_id,
    o.started_at,
    a.arriving_at,
    o.delivered_at,
    extract(epoch FROM o.delivered_at - a.arriving_at) AS arriving_to_delivered_s
FROM orders_order o
LEFT JOIN LATERAL (
    SELECT min(p.recorded_at) AS arriving_at
    FROM tracking_ping p
    WHERE p.order_id = o.id
      AND p.suspect_reason IS NULL
      AND p.recorded_at >= o.started_at
      AND p.recorded_at <= o.delivered_at
      AND (p.distance_to_destination_m <= 300 OR p.eta_seconds < 120)
) a ON true
WHERE o.delivered_at IS NOT NULL
  AND o.started_at IS NOT NULL;


-- analytics_ping_timeliness_daily
-- Per UTC day of recording: how many pings arrived late and how many out of order.
--   late:         received more than 60 s after it was recorded. The app uploads every
--                 ~15 s, so a late ping waited in the phone (no coverage, app in the
--                 background) and the live map showed an older position meanwhile.
--   out of order: recorded before a ping of the same courier that the server had already
--                 received in an earlier upload. Pings of one upload share `received_at`
--                 and do not count against each other (EXCLUDE GROUP).
CREATE OR REPLACE VIEW analytics_ping_timeliness_daily AS
WITH p AS (
    SELECT
        recorded_at,
        extract(epoch FROM received_at - recorded_at) AS delay_s,
        recorded_at < max(recorded_at) OVER (
            PARTITION BY courier_id ORDER BY received_at
            RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE GROUP
        ) AS out_of_order
    FROM tracking_ping
)
SELECT
    (recorded_at AT TIME ZONE 'UTC')::date AS day,
    count(*) AS pings,
    count(*) FILTER (WHERE delay_s > 60) AS late,
    count(*) FILTER (WHERE delay_s > 60)::float8 / count(*) AS late_rate,
    count(*) FILTER (WHERE out_of_order) AS out_of_order,
    count(*) FILTER (WHERE out_of_order)::float8 / count(*) AS out_of_order_rate,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY delay_s) AS median_delay_s,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY delay_s) AS p90_delay_s
FROM p
GROUP BY 1;


-- analytics_gps_accuracy_daily
-- Per UTC day: pings by reported GPS accuracy (the radius, in metres, the phone is 68 %
-- sure of), in fixed buckets [lower, upper). Pings without an accuracy get their own row
-- (lower and upper NULL). `share` is the fraction of the day's pings.
CREATE OR REPLACE VIEW analytics_gps_accuracy_daily AS
WITH b AS (
    SELECT
        (p.recorded_at AT TIME ZONE 'UTC')::date AS day,
        bounds.lower_m,
        bounds.upper_m
    FROM tracking_ping p
    LEFT JOIN (
        VALUES (0, 5), (5, 10), (10, 20), (20, 50), (50, 100), (100, NULL)
    ) AS bounds(lower_m, upper_m)
      ON p.accuracy_m >= bounds.lower_m
     AND (bounds.upper_m IS NULL OR p.accuracy_m < bounds.upper_m)
)
SELECT
    day,
    lower_m AS accuracy_from_m,
    upper_m AS accuracy_to_m,
    count(*) AS pings,
    count(*)::float8 / sum(count(*)) OVER (PARTITION BY day) AS share
FROM b
GROUP BY day, lower_m, upper_m;


-- analytics_eta_error
-- One row per ETA the product showed on a delivered order's trip: every trusted ping filed
-- under the order, recorded between the start of the delivery and its end, with an ETA.
-- The real time to go is delivered_at minus the ping's time (delivery is the only arrival
-- the product records; the handover time it includes is analytics_order_arriving_to_
-- delivered). error_s > 0: the ETA promised later than the real arrival (pessimistic).
-- minutes_to_go buckets the real time to go: 0 is the last minute of the trip.
CREATE OR REPLACE VIEW analytics_eta_error AS
SELECT
    p.order_id,
    p.recorded_at,
    p.eta_seconds,
    extract(epoch FROM o.delivered_at - p.recorded_at) AS actual_s,
    p.eta_seconds - extract(epoch FROM o.delivered_at - p.recorded_at) AS error_s,
    floor(extract(epoch FROM o.delivered_at - p.recorded_at) / 60)::int AS minutes_to_go
FROM tracking_ping p
JOIN orders_order o ON o.id = p.order_id
WHERE o.delivered_at IS NOT NULL
  AND o.started_at IS NOT NULL
  AND p.recorded_at >= o.started_at
  AND p.recorded_at <= o.delivered_at
  AND p.eta_seconds IS NOT NULL
  AND p.suspect_reason IS NULL;


-- analytics_eta_accuracy
-- ETA error by minutes to go, over every delivered order: the median signed error (bias)
-- and the median and 90th percentile of the absolute error. Read "at 10 minutes to go, 9
-- ETAs in 10 were within p90_abs_error_s of the truth".
CREATE OR REPLACE VIEW analytics_eta_accuracy AS
SELECT
    minutes_to_go,
    count(*) AS etas,
    count(DISTINCT order_id) AS orders,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY error_s) AS median_error_s,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(error_s)) AS median_abs_error_s,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY abs(error_s)) AS p90_abs_error_s
FROM analytics_eta_error
GROUP BY minutes_to_go;
