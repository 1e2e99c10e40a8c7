-- A mart's counts match the source's for the same São Paulo day.
with source_counts as (
    select courier_id, {{ local_day('recorded_at') }} as day, count(*) as pings
    from {{ source('ze', 'tracking_ping') }}
    where suspect_reason is null
    group by 1, 2
)
select s.courier_id, s.day, s.pings, m.pings as mart_pings
from source_counts s
left join {{ ref('fct_courier_days') }} m on m.courier_id = cast(s.courier_id as varchar(36)) and m.day = s.day
where m.pings is null or m.pings <> s.pings
