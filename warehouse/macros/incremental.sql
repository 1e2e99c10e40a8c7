{#- Incremental daily marts rebuild the days from this one on: var('lookback_days') before
    the newest day already built, so late pings (up to 7 days) land in their day; all of
    them while the mart is still empty (built before the first ping). -#}
{% macro rebuild_from_day() -%}
    (select coalesce({{ day_minus('max(day)', var('lookback_days')) }}, cast('2000-01-01' as date)) from {{ this }})
{%- endmacro %}

{#- The pings an incremental run reads: from one day before the first day it rebuilds (the
    first step of a day pairs with the last ping of the day before), on the raw sort key. -#}
{% macro pings_since_rebuild(alias='p') -%}
    {{ alias }}.recorded_at >= {{ local_day_start(day_minus(rebuild_from_day(), 1)) }}
{%- endmacro %}

{#- is_incremental(), except when the project is compiled without a warehouse
    (var('offline_compile'), the Redshift compile check): the incremental branch, the one a
    daily run executes, is then the one compiled. -#}
{% macro incremental_run() -%}
    {%- if var('offline_compile', false) -%}{{ return(true) }}{%- else -%}{{ return(is_incremental()) }}{%- endif -%}
{%- endmacro %}
