-- One row per ETA the product showed on a delivered order's trip: every trusted ping filed
-- under the order between the start of the delivery and its end, with an ETA. actual_s is
-- delivered_at minus the ping's time; error_s > 0: the ETA promised later than the arrival.
select
    p.order_id,
    p.event_id,
    p.recorded_at,
    p.day,
    {{ local_hour('p.recorded_at') }} as hour,
    p.eta_seconds,
    {{ seconds_between('p.recorded_at', 'o.delivered_at') }} as actual_s,
    p.eta_seconds - {{ seconds_between('p.recorded_at', 'o.delivered_at') }} as error_s,
    {{ floor_int(seconds_between('p.recorded_at', 'o.delivered_at') ~ ' / 60') }} as minutes_to_go
from {{ ref('stg_pings') }} p
join {{ ref('stg_orders') }} o on o.order_id = p.order_id
where o.delivered_at is not null
  and o.started_at is not null
  and p.recorded_at >= o.started_at
  and p.recorded_at <= o.delivered_at
  and p.eta_seconds is not null
  and p.is_trusted
