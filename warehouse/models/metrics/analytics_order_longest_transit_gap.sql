-- Per finished trip: the longest time without a trusted position from the courier while
-- the order was in transit (the trip's start and end count as bounds).
select
    order_id, courier_id, started_at, ended_at, pings_in_transit, longest_gap_s, longest_gap_started_at
from {{ ref('fct_deliveries') }}
where started_at is not null and ended_at is not null
