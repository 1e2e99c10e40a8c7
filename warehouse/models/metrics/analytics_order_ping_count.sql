-- Per order: the pings filed under it (trusted and flagged) and the time they span.
select order_id, status, pings, trusted_pings, suspect_pings, first_ping_at, last_ping_at
from {{ ref('fct_deliveries') }}
