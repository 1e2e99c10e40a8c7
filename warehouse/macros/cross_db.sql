{#- Where PostgreSQL and Redshift differ, one macro per idea; everything else is written
    once in SQL both accept (no FILTER, LATERAL, DISTINCT ON or VALUES lists). -#}

{#- The calendar day of a UTC timestamp in var('day_time_zone'). -#}
{% macro local_day(ts) %}{{ return(adapter.dispatch('local_day')(ts)) }}{% endmacro %}
{% macro default__local_day(ts) -%}
    cast(({{ ts }} at time zone '{{ var("day_time_zone") }}') as date)
{%- endmacro %}
{% macro redshift__local_day(ts) -%}
    cast(convert_timezone('UTC', '{{ var("day_time_zone") }}', {{ ts }}) as date)
{%- endmacro %}

{#- The hour of day (0-23) of a UTC timestamp in var('day_time_zone'). -#}
{% macro local_hour(ts) %}{{ return(adapter.dispatch('local_hour')(ts)) }}{% endmacro %}
{% macro default__local_hour(ts) -%}
    cast(extract(hour from ({{ ts }} at time zone '{{ var("day_time_zone") }}')) as integer)
{%- endmacro %}
{% macro redshift__local_hour(ts) -%}
    cast(extract(hour from convert_timezone('UTC', '{{ var("day_time_zone") }}', {{ ts }})) as integer)
{%- endmacro %}

{#- Seconds from timestamp a to timestamp b (double precision). -#}
{% macro seconds_between(a, b) %}{{ return(adapter.dispatch('seconds_between')(a, b)) }}{% endmacro %}
{% macro default__seconds_between(a, b) -%}
    cast(extract(epoch from ({{ b }} - {{ a }})) as double precision)
{%- endmacro %}
{% macro redshift__seconds_between(a, b) -%}
    (datediff(microsecond, {{ a }}, {{ b }}) / 1000000.0)
{%- endmacro %}

{#- A UTC timestamp `days` days before ts: range predicates stay on the raw column. -#}
{% macro days_before(ts, days) %}{{ return(adapter.dispatch('days_before')(ts, days)) }}{% endmacro %}
{% macro default__days_before(ts, days) -%}
    ({{ ts }} - interval '{{ days }} days')
{%- endmacro %}
{% macro redshift__days_before(ts, days) -%}
    dateadd(day, -{{ days }}, {{ ts }})
{%- endmacro %}

{#- The start of a local day, as a UTC timestamp of the column's type. -#}
{% macro local_day_start(day) %}{{ return(adapter.dispatch('local_day_start')(day)) }}{% endmacro %}
{% macro default__local_day_start(day) -%}
    (cast({{ day }} as timestamp) at time zone '{{ var("day_time_zone") }}')
{%- endmacro %}
{% macro redshift__local_day_start(day) -%}
    convert_timezone('{{ var("day_time_zone") }}', 'UTC', cast({{ day }} as timestamp))
{%- endmacro %}

{#- Geodesic distance in metres between two WGS84 positions given as lat/lon columns. -#}
{% macro distance_m(lat1, lon1, lat2, lon2) %}{{ return(adapter.dispatch('distance_m')(lat1, lon1, lat2, lon2)) }}{% endmacro %}
{% macro default__distance_m(lat1, lon1, lat2, lon2) -%}
    ST_Distance(
        cast(ST_SetSRID(ST_MakePoint({{ lon1 }}, {{ lat1 }}), 4326) as geography),
        cast(ST_SetSRID(ST_MakePoint({{ lon2 }}, {{ lat2 }}), 4326) as geography)
    )
{%- endmacro %}
{% macro redshift__distance_m(lat1, lon1, lat2, lon2) -%}
    ST_Distance(
        cast(ST_SetSRID(ST_MakePoint({{ lon1 }}, {{ lat1 }}), 4326) as geography),
        cast(ST_SetSRID(ST_MakePoint({{ lon2 }}, {{ lat2 }}), 4326) as geography)
    )
{%- endmacro %}

{#- Continuous percentile as an aggregate (both dialects; Redshift needs it alone per group). -#}
{% macro percentile(expr, fraction) -%}
    percentile_cont({{ fraction }}) within group (order by {{ expr }})
{%- endmacro %}

{#- An integer cast that both dialects read the same way. -#}
{% macro floor_int(expr) -%}
    cast(floor({{ expr }}) as integer)
{%- endmacro %}

{#- The date n days before a date. -#}
{% macro day_minus(day, n) %}{{ return(adapter.dispatch('day_minus')(day, n)) }}{% endmacro %}
{% macro default__day_minus(day, n) -%}
    cast({{ day }} - {{ n }} as date)
{%- endmacro %}
{% macro redshift__day_minus(day, n) -%}
    cast(dateadd(day, -{{ n }}, {{ day }}) as date)
{%- endmacro %}
