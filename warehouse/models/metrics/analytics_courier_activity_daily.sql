-- Per courier and São Paulo day: trusted pings, distance driven and active time.
select courier_id, day, pings, distance_m, active_s
from {{ ref('fct_courier_days') }}
