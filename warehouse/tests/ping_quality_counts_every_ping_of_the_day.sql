-- The daily quality mart counts every stored ping of its São Paulo day, flagged or not.
with source_counts as (
    select {{ local_day('recorded_at') }} as day, count(*) as pings
    from {{ source('ze', 'tracking_ping') }}
    group by 1
)
select s.day, s.pings, m.pings as mart_pings
from source_counts s
left join {{ ref('fct_ping_quality_daily') }} m on m.day = s.day
where m.pings is null or m.pings <> s.pings
