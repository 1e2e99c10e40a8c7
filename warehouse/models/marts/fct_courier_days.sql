{{ config(
    materialized='incremental', incremental_strategy='delete+insert', unique_key=['courier_id', 'day'],
    dist='courier_id', sort='day'
) }}
-- Per courier and São Paulo day: pings, active time and distance from consecutive trusted
-- pings (a gap over var('activity_gap_s') is a break: neither its time nor its jump
-- counts), idle time between orders, orders delivered, and the GPS accuracy reported.
with steps as (
    select s.*
    from {{ ref('int_courier_steps') }} s
    {% if incremental_run() %}where {{ pings_since_rebuild('s') }}{% endif %}
),
activity as (
    select
        courier_id,
        day,
        min(recorded_at) as first_ping_at,
        count(*) as pings,
        coalesce(sum(case when gap_s <= {{ var('activity_gap_s') }} then step_m end), 0) as distance_m,
        coalesce(sum(case when gap_s <= {{ var('activity_gap_s') }} then gap_s end), 0) as active_s,
        avg(accuracy_m) as mean_accuracy_m,
        sum(case when accuracy_m is null then 1 else 0 end) as pings_without_accuracy
    from steps
    group by courier_id, day
),
trips as (
    select
        courier_id,
        {{ local_day('started_at') }} as day,
        started_at,
        delivered_at,
        lag(ended_at) over (partition by courier_id order by started_at) as previous_ended_at
    from {{ ref('stg_orders') }}
    where courier_id is not null and started_at is not null and ended_at is not null
),
trip_days as (
    select
        courier_id,
        day,
        sum(case when delivered_at is not null then 1 else 0 end) as orders_delivered,
        -- Idle: from the end of one trip to the start of the next, within the same day.
        coalesce(sum(case when {{ local_day('previous_ended_at') }} = day
                          then {{ seconds_between('previous_ended_at', 'started_at') }} end), 0) as idle_s
    from trips
    group by courier_id, day
)
select
    a.courier_id,
    a.day,
    {{ local_day_start('a.day') }} as day_starts_at,
    a.first_ping_at,
    a.pings,
    a.distance_m,
    a.active_s,
    coalesce(t.orders_delivered, 0) as orders_delivered,
    coalesce(t.idle_s, 0) as idle_s,
    a.mean_accuracy_m,
    a.pings_without_accuracy
from activity a
left join trip_days t on t.courier_id = a.courier_id and t.day = a.day
{% if incremental_run() %}where a.day >= {{ rebuild_from_day() }}{% endif %}
