-- Every ping with how it arrived. out_of_order: recorded before a ping of the same courier
-- that the server had already received in an earlier upload; pings of one upload share
-- received_at and do not count against each other.
with uploads as (
    select courier_id, received_at, max(recorded_at) as newest_recorded_at
    from {{ ref('stg_pings') }}
    group by courier_id, received_at
),
seen_before as (
    select
        courier_id,
        received_at,
        max(newest_recorded_at) over (
            partition by courier_id order by received_at
            rows between unbounded preceding and 1 preceding
        ) as newest_recorded_before
    from uploads
)
select
    p.*,
    p.delay_s > {{ var('late_after_s') }} as is_late,
    coalesce(p.recorded_at < s.newest_recorded_before, false) as is_out_of_order
from {{ ref('stg_pings') }} p
join seen_before s on s.courier_id = p.courier_id and s.received_at = p.received_at
