"""The Redshift side of the replicated tables (deploy/warehouse/) matches what DMS sends,
and the release step starts the DMS task only when it should."""

from __future__ import annotations

import importlib.util
import re

import pytest
from ze_infra import analytics_tables as tables

TABLES_SQL = tables.WAREHOUSE_SQL / "redshift_tables.sql"


def _release():
    spec = importlib.util.spec_from_file_location("warehouse_release", tables.WAREHOUSE_SQL / "release.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _created() -> dict[str, str]:
    return {
        re.search(r"CREATE TABLE IF NOT EXISTS public\.(\w+)", s).group(1): s
        for s in tables.sql_statements(path=TABLES_SQL)
    }


def test_every_replicated_table_exists_in_the_warehouse_before_the_task_loads_it():
    assert set(_created()) == {*tables.TABLES, tables.PING_PARENT}


def test_columns_held_back_by_dms_have_no_column_in_the_warehouse():
    created = _created()
    for table, columns in tables.EXCLUDED_COLUMNS.items():
        for column in columns:
            assert not re.search(rf"^\s+{column}\s", created[table], re.M), f"{table}.{column}"


@pytest.mark.parametrize(
    ("table", "keys"),
    [
        ("tracking_ping", ("DISTKEY (courier_id)", "COMPOUND SORTKEY (recorded_at, courier_id)")),
        ("orders_order", ("DISTKEY (id)", "SORTKEY (created_at)")),
        ("orders_orderevent", ("DISTKEY (order_id)", "SORTKEY (recorded_at)")),
        ("couriers_courier", ("DISTSTYLE ALL",)),
    ],
)
def test_tables_are_laid_out_for_time_ranges_and_per_order_joins(table, keys):
    for key in keys:
        assert key in _created()[table]


def test_every_analytics_view_has_a_redshift_twin():
    postgres = (tables.WAREHOUSE_SQL.parents[1] / "tracking" / "sql" / "analytics_views.sql").read_text()
    redshift = (tables.WAREHOUSE_SQL / "redshift_views.sql").read_text()
    names = set(re.findall(r"CREATE OR REPLACE VIEW (analytics_\w+)", postgres))
    assert names and names == set(re.findall(r"CREATE OR REPLACE VIEW public\.(analytics_\w+)", redshift))


@pytest.mark.parametrize(
    ("status", "start_type"),
    [("ready", "start-replication"), ("stopped", "resume-processing"), ("running", None), ("starting", None)],
)
def test_release_starts_a_new_task_resumes_a_stopped_one_and_leaves_a_running_one(status, start_type):
    assert _release().replication_task_start_type(status=status) == start_type


def test_release_refuses_to_restart_a_failed_task():
    # A restarted full load appends again under DO_NOTHING: a person decides first.
    with pytest.raises(SystemExit, match="failed"):
        _release().replication_task_start_type(status="failed")
