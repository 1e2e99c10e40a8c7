-- One row per ETA shown on a delivered order's trip, against the real arrival.
select order_id, recorded_at, eta_seconds, actual_s, error_s, minutes_to_go
from {{ ref('int_eta_errors') }}
