-- Per delivered order: when the courier was first "arriving" and how long the handover took.
select order_id, courier_id, started_at, arriving_at, delivered_at, arriving_to_delivered_s
from {{ ref('fct_deliveries') }}
where delivered_at is not null and started_at is not null
