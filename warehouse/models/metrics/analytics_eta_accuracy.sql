-- ETA error by minutes to go over every delivered order: the median signed error (bias) and
-- the median and 90th percentile of the absolute error.
with e as (select * from {{ ref('int_eta_errors') }}),
counts as (
    select minutes_to_go, count(*) as etas, count(distinct order_id) as orders
    from e group by minutes_to_go
),
signed as (
    select minutes_to_go, {{ percentile('error_s', 0.5) }} as median_error_s
    from e group by minutes_to_go
),
absolute as (
    select
        minutes_to_go,
        {{ percentile('abs(error_s)', 0.5) }} as median_abs_error_s,
        {{ percentile('abs(error_s)', 0.9) }} as p90_abs_error_s
    from e group by minutes_to_go
)
select c.minutes_to_go, c.etas, c.orders, s.median_error_s, a.median_abs_error_s, a.p90_abs_error_s
from counts c
join signed s on s.minutes_to_go = c.minutes_to_go
join absolute a on a.minutes_to_go = c.minutes_to_go
