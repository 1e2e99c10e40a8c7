-- One row per order. Step times are the device times of the courier's actions;
-- created_at is the server's. The destination is the consumer's door (rounded in the
-- warehouse after 90 days, deploy/warehouse/privacy.sql); only the privacy rule of
-- stg_pings reads it.
select
    cast(id as varchar(36)) as order_id,
    cast(courier_id as varchar(36)) as courier_id,
    status,
    created_at,
    {{ local_day('created_at') }} as created_day,
    assigned_at,
    started_at,
    delivered_at,
    cancelled_at,
    coalesce(delivered_at, cancelled_at) as ended_at,
    {{ point_lat('destination') }} as destination_lat,
    {{ point_lon('destination') }} as destination_lon
from {{ source('ze', 'orders_order') }}
