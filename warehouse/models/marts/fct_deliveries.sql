{{ config(materialized='table', dist='order_id', sort='created_at') }}
-- One row per order: every step time, the durations between steps, the pings received,
-- the distance driven in transit (trusted pings only), the longest time the consumer's map
-- went without a position, when the courier was first "arriving", and when the "arriving"
-- and "delivered" notifications went out.
with orders as (
    select * from {{ ref('stg_orders') }}
),
ping_counts as (
    select
        order_id,
        count(*) as pings,
        sum(case when is_trusted then 1 else 0 end) as trusted_pings,
        sum(case when is_trusted then 0 else 1 end) as suspect_pings,
        min(recorded_at) as first_ping_at,
        max(recorded_at) as last_ping_at
    from {{ ref('stg_pings') }}
    where order_id is not null
    group by order_id
),
arriving as (
    -- The rule the product notifies on: the first trusted ping filed under the order, once
    -- the delivery started, within the radius of the destination or under the ETA.
    select o.order_id, min(p.recorded_at) as arriving_at
    from orders o
    join {{ ref('stg_pings') }} p on p.order_id = o.order_id
    where p.is_trusted
      and o.delivered_at is not null
      and p.recorded_at >= o.started_at
      and p.recorded_at <= o.delivered_at
      and (p.distance_to_destination_m <= {{ var('arriving_radius_m') }} or p.eta_seconds < {{ var('arriving_eta_s') }})
    group by o.order_id
),
trips as (
    select order_id, courier_id, started_at, ended_at
    from orders
    where started_at is not null and ended_at is not null
),
transit_steps as (
    -- The courier's trusted positions strictly inside the trip; its start and end bound it.
    select t.order_id, s.recorded_at as moment_at, s.gap_s, s.step_m
    from trips t
    join {{ ref('int_courier_steps') }} s
      on s.courier_id = t.courier_id
     and s.recorded_at > t.started_at
     and s.recorded_at < t.ended_at
),
moments as (
    select order_id, started_at as moment_at from trips
    union all
    select order_id, ended_at from trips
    union all
    select order_id, moment_at from transit_steps
),
gaps as (
    select
        order_id,
        lag(moment_at) over (partition by order_id order by moment_at) as gap_started_at,
        {{ seconds_between('lag(moment_at) over (partition by order_id order by moment_at)', 'moment_at') }} as gap_s
    from moments
),
longest_gap as (
    select order_id, gap_s as longest_gap_s, gap_started_at as longest_gap_started_at
    from (
        select
            g.*,
            row_number() over (partition by order_id order by gap_s desc, gap_started_at) as rank_in_order
        from gaps g
        where gap_s is not null
    ) ranked
    where rank_in_order = 1
),
transit as (
    -- Distance between consecutive positions inside the trip, gaps over the activity
    -- threshold left out (the first step of a trip starts before it and is not counted).
    select
        t.order_id,
        count(s.moment_at) as pings_in_transit,
        coalesce(sum(case when s.gap_s <= {{ var('activity_gap_s') }} and s.moment_at > f.first_at then s.step_m end), 0)
            as distance_m
    from trips t
    left join transit_steps s on s.order_id = t.order_id
    left join (select order_id, min(moment_at) as first_at from transit_steps group by order_id) f
      on f.order_id = t.order_id
    group by t.order_id
),
notified as (
    select
        order_id,
        min(case when kind = 'arriving' then sent_at end) as arriving_notified_at,
        min(case when kind = 'delivered' then sent_at end) as delivered_notified_at
    from {{ ref('stg_notifications') }}
    group by order_id
)
select
    o.order_id,
    o.courier_id,
    o.status,
    o.created_at,
    o.created_day,
    o.assigned_at,
    o.started_at,
    o.delivered_at,
    o.cancelled_at,
    o.ended_at,
    {{ seconds_between('o.created_at', 'o.assigned_at') }} as created_to_assigned_s,
    {{ seconds_between('o.assigned_at', 'o.started_at') }} as assigned_to_started_s,
    {{ seconds_between('o.started_at', 'o.delivered_at') }} as started_to_delivered_s,
    {{ seconds_between('o.created_at', 'o.delivered_at') }} as created_to_delivered_s,
    coalesce(c.pings, 0) as pings,
    coalesce(c.trusted_pings, 0) as trusted_pings,
    coalesce(c.suspect_pings, 0) as suspect_pings,
    c.first_ping_at,
    c.last_ping_at,
    tr.pings_in_transit,
    tr.distance_m,
    g.longest_gap_s,
    g.longest_gap_started_at,
    a.arriving_at,
    {{ seconds_between('a.arriving_at', 'o.delivered_at') }} as arriving_to_delivered_s,
    n.arriving_notified_at,
    n.delivered_notified_at,
    n.arriving_notified_at is not null as arriving_notified,
    n.delivered_notified_at is not null as delivered_notified
from orders o
left join ping_counts c on c.order_id = o.order_id
left join arriving a on a.order_id = o.order_id
left join transit tr on tr.order_id = o.order_id
left join longest_gap g on g.order_id = o.order_id
left join notified n on n.order_id = o.order_id
