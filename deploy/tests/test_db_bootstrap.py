"""The SQL the release task runs as the admin login (deploy/eb/db_bootstrap.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "eb/db_bootstrap.py"


def _sql() -> dict[str, str]:
    # Read as text: the module imports psycopg and boto3, which the deploy tools lack.
    module = ast.parse(SOURCE.read_text())
    return {
        target.id: node.value.value
        for node in module.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value.value, str)
    }


def _functions(sql: str) -> list[str]:
    return re.findall(r"CREATE (?:OR REPLACE )?FUNCTION.*?\$\$;", sql, re.S | re.I)


def test_every_security_definer_function_fixes_its_search_path():
    definers = [f for text in _sql().values() for f in _functions(text) if "SECURITY DEFINER" in f.upper()]
    assert definers
    for function in definers:
        header = function.split("$$", 1)[0]
        assert re.search(r"SET search_path = pg_catalog, pg_temp\b", header), header


def test_ddl_capture_lives_in_a_schema_the_app_login_does_not_own():
    sql = _sql()["DDL_AUDIT"]
    assert "CREATE SCHEMA IF NOT EXISTS awsdms AUTHORIZATION CURRENT_USER" in sql
    assert "public." not in sql
    for function in _functions(sql):
        body = function.split("$$")[1]
        # Every table it writes is schema-qualified.
        for table in re.findall(r"(?:INSERT INTO|DELETE FROM)\s+(\S+)", body):
            assert table.startswith("awsdms."), table


def test_dms_login_may_create_its_heartbeat_table_in_its_own_schema_only():
    sql = _sql()["DMS_HEARTBEAT"]
    assert "GRANT USAGE, CREATE ON SCHEMA {schema} TO {dms}" in sql
    assert "REVOKE ALL ON SCHEMA {schema} FROM PUBLIC" in sql
    # The schema the source endpoint names (HeartbeatSchema, ze_infra/analytics.py).
    assert "schema=sql.Identifier(tables.DMS_HEARTBEAT_SCHEMA)" in SOURCE.read_text()
