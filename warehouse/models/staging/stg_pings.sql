-- One row per stored ping, renamed and typed; `day` is the São Paulo day it was recorded.
-- Privacy: a ping older than var('privacy_after_days') has no distance or ETA to its
-- destination (three exact ones trilaterate the door), and no position where it lies within
-- var('privacy_radius_m') of the destination of one of its courier's orders, from the
-- assignment to var('privacy_after_end_h') hours after the order ended: the approach and the
-- departure leg (whose pings carry the next order, or none).
with pings as (
    select
        cast(event_id as varchar(36)) as event_id,
        cast(courier_id as varchar(36)) as courier_id,
        cast(order_id as varchar(36)) as order_id,
        recorded_at,
        received_at,
        lat,
        lon,
        accuracy_m,
        distance_to_destination_m,
        eta_seconds,
        suspect_reason,
        recorded_at < {{ days_before(now_utc(), var('privacy_after_days')) }} as is_old
    from {{ source('ze', 'tracking_ping') }}
),
near_a_door as (
    select distinct p.courier_id, p.event_id
    from pings p
    join {{ ref('stg_orders') }} o
      on o.courier_id = p.courier_id
     and o.assigned_at is not null
     and p.recorded_at >= o.assigned_at
     and (o.ended_at is null
          or p.recorded_at <= {{ hours_after('o.ended_at', var('privacy_after_end_h')) }})
    where p.is_old
      and {{ distance_m('p.lat', 'p.lon', 'o.destination_lat', 'o.destination_lon') }} < {{ var('privacy_radius_m') }}
)
select
    p.event_id,
    p.courier_id,
    p.order_id,
    p.recorded_at,
    p.received_at,
    {{ local_day('p.recorded_at') }} as day,
    case when n.event_id is null then p.lat end as lat,
    case when n.event_id is null then p.lon end as lon,
    cast(p.accuracy_m as double precision) as accuracy_m,
    cast(case when not p.is_old then p.distance_to_destination_m end as double precision) as distance_to_destination_m,
    cast(case when not p.is_old then p.eta_seconds end as double precision) as eta_seconds,
    p.suspect_reason,
    p.suspect_reason is null as is_trusted,
    {{ seconds_between('p.recorded_at', 'p.received_at') }} as delay_s
from pings p
left join near_a_door n on n.courier_id = p.courier_id and n.event_id = p.event_id
