-- One row per consumer notification: its kind and when it went out (NULL if it never did).
select
    cast(order_id as varchar(36)) as order_id,
    kind,
    status,
    created_at,
    sent_at
from {{ source('ze', 'orders_notification') }}
