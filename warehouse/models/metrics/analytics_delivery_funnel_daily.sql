-- Orders created per São Paulo day, how many reached each step (an order cancelled after
-- assignment counts as assigned and as cancelled), and the median time between steps.
-- Each median has its own aggregate: Redshift sorts once per query block.
with d as (select * from {{ ref('fct_deliveries') }}),
counts as (
    select
        created_day as day,
        count(*) as created,
        count(assigned_at) as assigned,
        count(started_at) as started,
        count(delivered_at) as delivered,
        count(cancelled_at) as cancelled
    from d group by created_day
),
{% for step in ['created_to_assigned', 'assigned_to_started', 'started_to_delivered', 'created_to_delivered'] %}
m_{{ step }} as (
    select created_day as day, {{ percentile(step ~ '_s', 0.5) }} as median_{{ step }}_s
    from d where {{ step }}_s is not null group by created_day
){{ ',' if not loop.last }}
{% endfor %}
select
    c.*,
    m_created_to_assigned.median_created_to_assigned_s,
    m_assigned_to_started.median_assigned_to_started_s,
    m_started_to_delivered.median_started_to_delivered_s,
    m_created_to_delivered.median_created_to_delivered_s
from counts c
{% for step in ['created_to_assigned', 'assigned_to_started', 'started_to_delivered', 'created_to_delivered'] %}
left join m_{{ step }} on m_{{ step }}.day = c.day
{% endfor %}
