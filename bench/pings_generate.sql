-- Synthetic pings for export and analytics trials on a development database, written by the
-- server itself (generate_series), about a minute for 5 million rows:
--   psql "$DATABASE_URL" -v pings=5000000 -v days=7 -f bench/pings_generate.sql
-- (with postgis:// turned into postgresql:// for psql). The pings are spread evenly over the
-- `days` UTC days before today, whose partitions `ping_partitions_ensure` keeps, among 500
-- couriers around São Paulo; they belong to no order. Never run it against production.
\set ON_ERROR_STOP on
INSERT INTO tracking_ping (
    event_id, recorded_at, received_at, courier_id, lat, lon, accuracy_m, speed_mps,
    heading_deg, attributes)
SELECT
    gen_random_uuid(),
    g.recorded_at,
    g.recorded_at + make_interval(secs => 1 + random() * 10),
    md5('courier ' || (g.i % 500))::uuid,
    -23.60 + random() * 0.1,
    -46.70 + random() * 0.1,
    (3 + random() * 30)::real,
    (random() * 15)::real,
    (random() * 360)::real,
    '{}'::jsonb
FROM (
    SELECT i, ((now() AT TIME ZONE 'UTC')::date - :days)::timestamp AT TIME ZONE 'UTC'
              + make_interval(secs => i * (:days * 86400.0 / :pings)) AS recorded_at
    FROM generate_series(0, :pings - 1) AS i
) AS g;
ANALYZE tracking_ping;
