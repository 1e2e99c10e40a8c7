-- Per São Paulo day of recording: late and out-of-order pings, and the delay's spread.
select day, pings, late, late_rate, out_of_order, out_of_order_rate, median_delay_s, p90_delay_s
from {{ ref('fct_ping_quality_daily') }}
