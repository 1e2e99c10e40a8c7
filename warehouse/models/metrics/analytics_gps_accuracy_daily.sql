-- Per São Paulo day: pings by reported GPS accuracy in fixed buckets [from, to); pings
-- without an accuracy have their own row (both bounds NULL). share: of the day's pings.
with bucketed as (
    select
        day,
        case
            when accuracy_m is null then null
            when accuracy_m < 5 then 0 when accuracy_m < 10 then 5 when accuracy_m < 20 then 10
            when accuracy_m < 50 then 20 when accuracy_m < 100 then 50 else 100
        end as accuracy_from_m,
        case
            when accuracy_m is null then null
            when accuracy_m < 5 then 5 when accuracy_m < 10 then 10 when accuracy_m < 20 then 20
            when accuracy_m < 50 then 50 when accuracy_m < 100 then 100
        end as accuracy_to_m
    from {{ ref('stg_pings') }}
),
counts as (
    select day, accuracy_from_m, accuracy_to_m, count(*) as pings
    from bucketed group by day, accuracy_from_m, accuracy_to_m
)
select
    c.day,
    c.accuracy_from_m,
    c.accuracy_to_m,
    c.pings,
    cast(c.pings as double precision) / q.pings as share
from counts c
join {{ ref('fct_ping_quality_daily') }} q on q.day = c.day
