-- Consecutive trusted pings of each courier: the time and the geodesic distance from the
-- previous one. A gap over var('activity_gap_s') ends a stretch of activity; a step belongs
-- to the day of its later ping.
select
    courier_id,
    order_id,
    recorded_at,
    day,
    accuracy_m,
    {{ seconds_between('prev_recorded_at', 'recorded_at') }} as gap_s,
    case when prev_lat is not null then {{ distance_m('prev_lat', 'prev_lon', 'lat', 'lon') }} end as step_m
from (
    select
        p.*,
        lag(p.recorded_at) over w as prev_recorded_at,
        lag(p.lat) over w as prev_lat,
        lag(p.lon) over w as prev_lon
    from {{ ref('stg_pings') }} p
    where p.is_trusted
    window w as (partition by p.courier_id order by p.recorded_at, p.event_id)
) steps
