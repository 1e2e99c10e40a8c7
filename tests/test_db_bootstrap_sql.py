"""The DMS DDL capture that deploy/eb/db_bootstrap.py installs as the admin login, run on a
real PostgreSQL inside the test's transaction (rolled back after): it installs over the
earlier layout, runs with a fixed search_path, and records what DMS reads."""

from __future__ import annotations

import importlib.util

import pytest
from django.conf import settings
from django.db import connection

spec = importlib.util.spec_from_file_location("db_bootstrap", settings.BASE_DIR / "deploy/eb/db_bootstrap.py")
db_bootstrap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(db_bootstrap)

SEEN = """
CREATE TABLE awsdms.seen (LIKE awsdms.awsdms_ddl_audit);
CREATE FUNCTION awsdms.keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO awsdms.seen SELECT NEW.*; RETURN NEW; END $$;
CREATE TRIGGER keep BEFORE INSERT ON awsdms.awsdms_ddl_audit FOR EACH ROW EXECUTE FUNCTION awsdms.keep();
"""


@pytest.fixture
def ddl_capture(db):
    with connection.cursor() as cur:
        # The layout of earlier releases, which the swap replaces.
        cur.execute("CREATE TABLE public.awsdms_ddl_audit (c_key bigserial PRIMARY KEY)")
        cur.execute(
            "CREATE FUNCTION public.awsdms_intercept_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$"
        )
        cur.execute(
            "CREATE EVENT TRIGGER awsdms_intercept_ddl ON ddl_command_end "
            "EXECUTE FUNCTION public.awsdms_intercept_ddl()"
        )
        for _ in range(2):  # every release runs it again
            cur.execute(db_bootstrap.DDL_AUDIT)
            cur.execute(db_bootstrap.DDL_AUDIT_SWAP)
        # The function deletes each row as it writes it; keep a copy to look at.
        cur.execute(SEEN)
        yield cur


def test_capture_function_runs_as_its_owner_with_a_fixed_search_path(ddl_capture):
    ddl_capture.execute(
        "SELECT p.prosecdef, p.proconfig, n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE p.proname = 'awsdms_intercept_ddl'"
    )
    assert ddl_capture.fetchall() == [(True, ["search_path=pg_catalog, pg_temp"], "awsdms")]
    ddl_capture.execute("SELECT evtfoid::regproc::text FROM pg_event_trigger WHERE evtname = 'awsdms_intercept_ddl'")
    assert ddl_capture.fetchone() == ("awsdms.awsdms_intercept_ddl",)
    assert connection.introspection.table_names(ddl_capture).count("awsdms_ddl_audit") == 0  # gone from public


def test_a_new_partition_is_recorded_with_its_schema_and_statement(ddl_capture):
    ddl_capture.execute("SET LOCAL search_path = public")
    ddl_capture.execute("CREATE TABLE tracking_ping_p20990101 (id int)")
    ddl_capture.execute("ALTER TABLE tracking_ping_p20990101 ADD COLUMN x int")
    ddl_capture.execute("DROP TABLE tracking_ping_p20990101")
    ddl_capture.execute("SELECT c_tag, c_schema, c_ddlqry FROM awsdms.seen ORDER BY c_key")
    assert ddl_capture.fetchall() == [
        ("CREATE TABLE", "public", "CREATE TABLE tracking_ping_p20990101 (id int)"),
        ("ALTER TABLE", "public", "ALTER TABLE tracking_ping_p20990101 ADD COLUMN x int"),
        ("DROP TABLE", "public", "DROP TABLE tracking_ping_p20990101"),
    ]
    ddl_capture.execute("SELECT count(*) FROM awsdms.awsdms_ddl_audit")
    assert ddl_capture.fetchone() == (0,)
