"""Database roles and grants the migrations cannot create for themselves.

Runs in the release task (deploy/eb/release-database.sh, started by release.sh) as the
cluster's admin login (rds_superuser), whose secret only that task's role may read.

    python deploy/eb/db_bootstrap.py roles    # before `migrate`
    python deploy/eb/db_bootstrap.py grants   # after `migrate`

`roles`:
  1. CREATE EXTENSION postgis (needs rds_superuser; Django's own
     CREATE EXTENSION IF NOT EXISTS then finds it and does nothing);
  2. the ze_app login, made owner of the database (so it owns what migrations create);
  3. the ze_dms login with rds_replication (logical replication slot for DMS CDC);
  4. the DDL-capture table, function and event trigger DMS uses to see new daily
     partitions of tracking_ping (event triggers need rds_superuser, DMS's login has not);
  5. the schema where DMS creates and writes its heartbeat table (HeartbeatSchema).
`grants`:
  6. SELECT for ze_dms on exactly the analytics tables and the existing ping partitions,
     and by default on tables ze_app creates later (the partitions made ahead each day).

Every step is idempotent: a deployment runs it again.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import boto3
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ze_infra import analytics_tables as tables  # noqa: E402  (plain data, no CDK import)

# The DDL-capture artifacts live in a schema of the admin's own: ze_app owns the database
# and its public schema, and a schema's owner may drop any table in it, so an audit table
# in public could be swapped for one whose trigger runs as the admin. The function runs
# as the admin (SECURITY DEFINER) whenever ze_app changes a table: its search_path is
# fixed so nothing the caller creates (a temporary table, a look-alike function) is found
# before the catalog, and every object it names is schema-qualified.
# The caller's schema is no longer current_schema (the SET replaces it), so it is read
# from the command itself; a DROP lists no object at ddl_command_end: every table is public.
DDL_AUDIT = """
CREATE SCHEMA IF NOT EXISTS awsdms AUTHORIZATION CURRENT_USER;
REVOKE ALL ON SCHEMA awsdms FROM PUBLIC;
CREATE TABLE IF NOT EXISTS awsdms.awsdms_ddl_audit (
    c_key    bigserial PRIMARY KEY,
    c_time   timestamp,
    c_user   varchar(64),
    c_txn    varchar(16),
    c_tag    varchar(24),
    c_oid    integer,
    c_name   varchar(64),
    c_schema varchar(64),
    c_ddlqry text
);
CREATE OR REPLACE FUNCTION awsdms.awsdms_intercept_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE _qry text;
BEGIN
  IF tg_tag IN ('CREATE TABLE', 'ALTER TABLE', 'DROP TABLE', 'CREATE TABLE AS') THEN
    SELECT pg_catalog.current_query() INTO _qry;
    INSERT INTO awsdms.awsdms_ddl_audit VALUES (
      DEFAULT, pg_catalog.now(), current_user, pg_catalog.txid_current()::varchar(16), tg_tag, 0, '',
      coalesce((SELECT c.schema_name FROM pg_catalog.pg_event_trigger_ddl_commands() c
                WHERE c.schema_name IS NOT NULL LIMIT 1), 'public'),
      _qry);
    DELETE FROM awsdms.awsdms_ddl_audit;
  END IF;
END;
$$;
REVOKE ALL ON FUNCTION awsdms.awsdms_intercept_ddl() FROM PUBLIC;
"""
# Earlier releases kept the artifacts in public (see above): replaced in one transaction.
DDL_AUDIT_SWAP = """
DROP EVENT TRIGGER IF EXISTS awsdms_intercept_ddl;
CREATE EVENT TRIGGER awsdms_intercept_ddl ON ddl_command_end EXECUTE FUNCTION awsdms.awsdms_intercept_ddl();
DROP FUNCTION IF EXISTS public.awsdms_intercept_ddl();
DROP TABLE IF EXISTS public.awsdms_ddl_audit;
"""

# DMS creates `awsdms_heartbeat` there on its first start and writes it every few minutes;
# the only schema where its login may create anything.
DMS_HEARTBEAT = """
CREATE SCHEMA IF NOT EXISTS {schema};
REVOKE ALL ON SCHEMA {schema} FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA {schema} TO {dms}
"""


def _secret(arn: str) -> dict:
    client = boto3.client("secretsmanager", region_name=os.environ["AWS_REGION"])
    return json.loads(client.get_secret_value(SecretId=arn)["SecretString"])


def _admin_connection() -> psycopg.Connection:
    admin = _secret(os.environ["DB_ADMIN_SECRET_ARN"])
    return psycopg.connect(
        host=os.environ["DB_HOST"],
        port=int(os.environ.get("DB_PORT", "5432")),
        dbname=os.environ["DB_NAME"],
        user=admin["username"],
        password=admin["password"],
        # The same verified TLS as the app (DATABASE_SSLMODE and DATABASE_SSLROOTCERT).
        sslmode=os.environ.get("DATABASE_SSLMODE", "verify-full"),
        sslrootcert=os.environ["DATABASE_SSLROOTCERT"],
        autocommit=True,
    )


def _login(cur: psycopg.Cursor, name: str, password: str) -> None:
    exists = cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    cur.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))


def roles() -> None:
    app_user, app_password = os.environ["DB_USER"], os.environ["DB_PASSWORD"]
    dms = _secret(os.environ["DB_DMS_SECRET_ARN"])
    with _admin_connection() as conn, conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        _login(cur, app_user, app_password)
        _login(cur, dms["username"], dms["password"])
        # rds_superuser is no true superuser: to hand the database to ze_app and set its
        # default privileges, the admin must be a member of ze_app.
        cur.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(app_user)))
        cur.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(os.environ["DB_NAME"]), sql.Identifier(app_user)
            )
        )
        cur.execute(sql.SQL("GRANT rds_replication TO {}").format(sql.Identifier(dms["username"])))
        with conn.transaction():
            cur.execute(DDL_AUDIT)
            cur.execute(DDL_AUDIT_SWAP)
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA awsdms TO {}").format(sql.Identifier(dms["username"])))
        cur.execute(sql.SQL("GRANT SELECT ON awsdms.awsdms_ddl_audit TO {}").format(sql.Identifier(dms["username"])))
        cur.execute(
            sql.SQL(DMS_HEARTBEAT).format(
                schema=sql.Identifier(tables.DMS_HEARTBEAT_SCHEMA), dms=sql.Identifier(dms["username"])
            )
        )


def grants() -> None:
    app_user = os.environ["DB_USER"]
    dms_user = os.environ.get("DB_DMS_USER", "ze_dms")
    with _admin_connection() as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(dms_user)))
        partitions = [
            row[0]
            for row in cur.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND (tablename LIKE 'tracking\\_ping\\_p%' OR tablename = 'tracking_ping_default')"
            ).fetchall()
        ]
        for table in [*tables.TABLES, *partitions]:
            if cur.execute("SELECT to_regclass(%s)", (f"public.{table}",)).fetchone()[0] is None:
                print(f"db_bootstrap: {table} does not exist yet", file=sys.stderr)
                continue
            cur.execute(
                sql.SQL("GRANT SELECT ON public.{} TO {}").format(sql.Identifier(table), sql.Identifier(dms_user))
            )
        # Partitions created ahead by ping_partitions_ensure (as ze_app) are readable by
        # DMS from birth. The cost: any table ze_app creates later is too; the DMS task's
        # table mappings, not this grant, decide what leaves the database.
        cur.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT SELECT ON TABLES TO {}").format(
                sql.Identifier(app_user), sql.Identifier(dms_user)
            )
        )


if __name__ == "__main__":
    {"roles": roles, "grants": grants}[sys.argv[1]]()
