-- One row per order. Step times are the device times of the courier's actions;
-- created_at is the server's.
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
    coalesce(delivered_at, cancelled_at) as ended_at
from {{ source('ze', 'orders_order') }}
