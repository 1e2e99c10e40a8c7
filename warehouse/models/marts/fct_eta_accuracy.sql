{{ config(materialized='table', dist='even', sort='day') }}
-- The ETA the consumer was shown at fixed points before delivery (the last ETA shown at
-- least 5, 10 and 15 minutes before the arrival) against the real arrival, by ETA bucket
-- (5-minute bands of the ETA shown) and São Paulo hour of the ping.
with points as (
    select 5 as minutes_before union all select 10 union all select 15
),
shown as (
    select
        e.*,
        pt.minutes_before,
        row_number() over (partition by e.order_id, pt.minutes_before order by e.recorded_at desc) as latest_first
    from {{ ref('int_eta_errors') }} e
    join points pt on e.actual_s >= pt.minutes_before * 60
)
select
    day,
    hour,
    minutes_before,
    {{ floor_int('eta_seconds / 300') }} * 5 as eta_bucket_min,
    count(*) as orders,
    avg(error_s) as mean_error_s,
    avg(abs(error_s)) as mean_abs_error_s,
    sum(case when abs(error_s) <= 120 then 1 else 0 end) as within_2_min
from shown
where latest_first = 1
group by day, hour, minutes_before, {{ floor_int('eta_seconds / 300') }} * 5
