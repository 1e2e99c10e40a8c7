{{ config(
    materialized='incremental', incremental_strategy='delete+insert', unique_key=['day'],
    dist='even', sort='day'
) }}
-- Per São Paulo day of recording: pings, how many arrived late (received more than
-- var('late_after_s') after they were recorded) and out of order, the delay's median and
-- 90th percentile, the longest gap between two trusted pings of a courier in transit, and
-- the fixes enrichment flagged, by reason.
with pings as (
    select p.*
    from {{ ref('int_ping_arrivals') }} p
    {% if incremental_run() %}where {{ pings_since_rebuild('p') }}{% endif %}
),
counts as (
    select
        day,
        count(*) as pings,
        sum(case when is_late then 1 else 0 end) as late,
        sum(case when is_out_of_order then 1 else 0 end) as out_of_order,
        sum(case when suspect_reason is not null then 1 else 0 end) as suspect,
        sum(case when suspect_reason = 'implied_speed' then 1 else 0 end) as suspect_implied_speed,
        sum(case when suspect_reason = 'null_island' then 1 else 0 end) as suspect_null_island
    from pings
    group by day
),
delays as (
    select
        day,
        {{ percentile('delay_s', 0.5) }} as median_delay_s,
        {{ percentile('delay_s', 0.9) }} as p90_delay_s
    from pings
    group by day
),
transit_gaps as (
    select s.day, max(s.gap_s) as longest_transit_gap_s
    from {{ ref('int_courier_steps') }} s
    where s.order_id is not null
    {% if incremental_run() %}and {{ pings_since_rebuild('s') }}{% endif %}
    group by s.day
)
select
    c.day,
    {{ local_day_start('c.day') }} as day_starts_at,
    c.pings,
    c.late,
    cast(c.late as double precision) / c.pings as late_rate,
    c.out_of_order,
    cast(c.out_of_order as double precision) / c.pings as out_of_order_rate,
    d.median_delay_s,
    d.p90_delay_s,
    g.longest_transit_gap_s,
    c.suspect,
    c.suspect_implied_speed,
    c.suspect_null_island
from counts c
join delays d on d.day = c.day
left join transit_gaps g on g.day = c.day
{% if incremental_run() %}where c.day >= {{ rebuild_from_day() }}{% endif %}
