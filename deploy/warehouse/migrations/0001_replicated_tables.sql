-- Redshift tables that DMS fills from Aurora (full load, then CDC).
--
-- They exist before the DMS task first starts (deploy/warehouse/release.py applies the
-- migrations of this folder, each once), because the task's TargetTablePrepMode is
-- DO_NOTHING: DMS never creates, drops or empties them (deploy/ze_infra/analytics.py
-- TASK_SETTINGS). IF NOT EXISTS lets a warehouse made before the migrations adopt this one.
-- A schema change is a new file here (ALTER TABLE ... ADD COLUMN), released before the
-- Aurora migration that needs it: DMS does not replay source ALTERs
-- (HandleSourceTableAltered is off).
--
-- Types follow what DMS writes for each PostgreSQL type:
--   uuid -> VARCHAR(36); timestamptz -> TIMESTAMP (UTC); real -> REAL;
--   double precision -> DOUBLE PRECISION; jsonb -> VARCHAR;
--   geography(Point, 4326) -> VARCHAR: PostGIS prints it as hex EWKB, which
--   ST_GeomFromEWKB reads back (see redshift_views.sql).
-- A ping's position is two plain columns, lat and lon (WGS84 degrees), as in Aurora, where
-- they take 16 bytes a row instead of a 29-byte geography on the biggest table; the views
-- build the point (ST_SetSRID(ST_MakePoint(lon, lat), 4326)). The other tables' positions
-- are geography, hence EWKB text.
-- Columns are in Aurora's order (without the columns held back), as DMS copies them.
-- Primary keys are declared for the planner and for DMS's batch apply; Redshift does not
-- enforce them.
--
-- Distribution and sort keys, for the two query shapes analysts run:
--   * time ranges ("last week per day"): every fact table sorts on its time column first,
--     so a range reads only the blocks of that range (zone maps);
--   * per order ("this trip's pings", ETA error per order): orders and their child tables
--     are distributed on the order id, so joining them moves no data; pings are
--     distributed on the courier, because a ping's order is often NULL (a courier with no
--     active order), and a NULL distribution key would pile those rows on one slice. A
--     ping joined to its order moves the order rows (about 1 per 100 pings) to the pings,
--     not the other way round, and a courier's trail (distance, gaps, out-of-order) is
--     computed inside one slice.
--   * couriers are a small dimension: copied to every node (DISTSTYLE ALL).

CREATE TABLE IF NOT EXISTS public.tracking_ping (
    -- Aurora's column order (fixed-width columns first, for alignment there).
    recorded_at TIMESTAMP NOT NULL,
    received_at TIMESTAMP NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    accuracy_m REAL,
    speed_mps REAL,
    distance_to_destination_m INTEGER,
    eta_seconds INTEGER,
    heading_deg SMALLINT,
    courier_id VARCHAR(36) NOT NULL,
    event_id VARCHAR(36) NOT NULL,
    order_id VARCHAR(36),
    suspect_reason VARCHAR(32),
    -- Bounded by TRACKING_MAX_ATTRIBUTES_BYTES (2048) in the app; JSON_PARSE() it to query.
    attributes VARCHAR(4096),
    -- A ping's key is its courier's (courier-scoped idempotency), as in Aurora.
    PRIMARY KEY (courier_id, recorded_at, event_id)
)
DISTKEY (courier_id)
-- recorded_at first: every metric is over a time range. courier_id second: within a day,
-- one courier's pings sit in few blocks.
COMPOUND SORTKEY (recorded_at, courier_id);

CREATE TABLE IF NOT EXISTS public.orders_order (
    id VARCHAR(36) NOT NULL,
    external_id VARCHAR(64),
    -- consumer_name and tracking_code never leave Aurora (DMS remove-column rules).
    destination VARCHAR(100) NOT NULL,
    status VARCHAR(16) NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    assigned_at TIMESTAMP,
    started_at TIMESTAMP,
    delivered_at TIMESTAMP,
    cancelled_at TIMESTAMP,
    courier_id VARCHAR(36),
    PRIMARY KEY (id)
)
DISTKEY (id)
SORTKEY (created_at);

CREATE TABLE IF NOT EXISTS public.orders_orderevent (
    id BIGINT NOT NULL,
    event_id VARCHAR(36) NOT NULL,
    type VARCHAR(16) NOT NULL,
    status_after VARCHAR(16) NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    received_at TIMESTAMP NOT NULL,
    location VARCHAR(100),
    accuracy_m DOUBLE PRECISION,
    courier_id VARCHAR(36),
    order_id VARCHAR(36) NOT NULL,
    PRIMARY KEY (id)
)
DISTKEY (order_id)
SORTKEY (recorded_at);

CREATE TABLE IF NOT EXISTS public.orders_notification (
    id BIGINT NOT NULL,
    kind VARCHAR(16) NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL,
    error VARCHAR(65535),
    created_at TIMESTAMP NOT NULL,
    last_attempt_at TIMESTAMP,
    sent_at TIMESTAMP,
    provider_message_id VARCHAR(128),
    order_id VARCHAR(36) NOT NULL,
    PRIMARY KEY (id)
)
DISTKEY (order_id)
SORTKEY (created_at);

CREATE TABLE IF NOT EXISTS public.couriers_courier (
    id VARCHAR(36) NOT NULL,
    -- name and user_id never leave Aurora (DMS remove-column rules).
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id)
)
DISTSTYLE ALL
SORTKEY (id);

-- Current state, one row per order / courier, rewritten by CDC many times a minute:
-- small, and joined by order or courier.
CREATE TABLE IF NOT EXISTS public.tracking_orderlastlocation (
    location VARCHAR(100) NOT NULL,
    accuracy_m DOUBLE PRECISION,
    speed_mps DOUBLE PRECISION,
    heading_deg DOUBLE PRECISION,
    recorded_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    order_id VARCHAR(36) NOT NULL,
    distance_to_destination_m DOUBLE PRECISION,
    eta_seconds INTEGER,
    courier_id VARCHAR(36) NOT NULL,
    PRIMARY KEY (order_id)
)
DISTKEY (order_id)
SORTKEY (recorded_at);

CREATE TABLE IF NOT EXISTS public.tracking_courierlastlocation (
    location VARCHAR(100) NOT NULL,
    accuracy_m DOUBLE PRECISION,
    speed_mps DOUBLE PRECISION,
    heading_deg DOUBLE PRECISION,
    recorded_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    courier_id VARCHAR(36) NOT NULL,
    PRIMARY KEY (courier_id)
)
DISTSTYLE ALL
SORTKEY (courier_id);
