-- A delivered order has every step time, in order: created, assigned, started, delivered.
select order_id
from {{ ref('fct_deliveries') }}
where status = 'delivered'
  and not (
      assigned_at is not null and started_at is not null and delivered_at is not null
      and assigned_at <= started_at and started_at <= delivered_at
  )
