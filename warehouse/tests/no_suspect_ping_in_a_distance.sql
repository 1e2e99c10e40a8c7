-- No flagged ping contributes to a distance: every step starts and ends on a trusted ping.
select s.courier_id, s.recorded_at
from {{ ref('int_courier_steps') }} s
join {{ ref('stg_pings') }} p
  on p.courier_id = s.courier_id and p.recorded_at = s.recorded_at
where not p.is_trusted
