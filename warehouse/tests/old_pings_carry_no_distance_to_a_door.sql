-- After var('privacy_after_days') no ping shows its distance or ETA to the destination:
-- three of them trilaterate the consumer's door (tests/warehouse/test_privacy.py tries it).
select event_id, courier_id
from {{ ref('stg_pings') }}
where recorded_at < {{ days_before(now_utc(), var('privacy_after_days')) }}
  and (distance_to_destination_m is not null or eta_seconds is not null)
