-- One row per stored ping, renamed and typed; `day` is the São Paulo day it was recorded.
select
    cast(event_id as varchar(36)) as event_id,
    cast(courier_id as varchar(36)) as courier_id,
    cast(order_id as varchar(36)) as order_id,
    recorded_at,
    received_at,
    {{ local_day('recorded_at') }} as day,
    lat,
    lon,
    cast(accuracy_m as double precision) as accuracy_m,
    cast(distance_to_destination_m as double precision) as distance_to_destination_m,
    cast(eta_seconds as double precision) as eta_seconds,
    suspect_reason,
    suspect_reason is null as is_trusted,
    {{ seconds_between('recorded_at', 'received_at') }} as delay_s
from {{ source('ze', 'tracking_ping') }}
