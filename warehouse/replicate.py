"""The local warehouse database, fed by logical replication from the service's database.

Production's DMS copies the `ze_analytics` publication's tables into Redshift; here a second
database on the same PostgreSQL server subscribes to that publication, so `dbt build` runs
on what the service really wrote. Idempotent: the first run creates the database, one table
per published table (the published columns, their types, the primary key) and the
subscription; later runs create what a newer publication added and refresh the
subscription.

    eval "$(python warehouse/replicate.py SERVICE_DSN WAREHOUSE_DBNAME)"

Its output is the dbt profile's connection (WAREHOUSE_* exports, warehouse/profiles.yml):
the service's server, the warehouse database; progress goes to stderr.
"""

from __future__ import annotations

import shlex
import sys
import time

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

PUBLICATION = "ze_analytics"
SYNC_TIMEOUT_S = 120


def subscription_name(warehouse_dbname: str) -> str:
    """The subscription, and its slot on the service's server: one per warehouse database
    (slots and subscriptions are named server-wide)."""
    return f"ze_{warehouse_dbname}"


def execute(dsn: str, sql: str, params: list | None = None) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def tables_create(*, service: str, warehouse: str) -> list[str]:
    """Each published table the warehouse lacks, created with its published columns."""
    existing = {name for (name,) in execute(warehouse, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    created = []
    for table, columns in execute(
        service, "SELECT tablename, attnames FROM pg_publication_tables WHERE pubname = %s", [PUBLICATION]
    ):
        if table in existing:
            continue
        types = dict(
            execute(
                service,
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                [table],
            )
        )
        ((key,),) = execute(
            service,
            "SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_constraint c "
            "CROSS JOIN unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
            "WHERE c.conrelid = %s::regclass AND c.contype = 'p'",
            [table],
        )
        definition = ", ".join(f"{column} {types[column]}" for column in columns)
        execute(warehouse, f"CREATE TABLE {table} ({definition}, PRIMARY KEY ({', '.join(key)}))")
        created.append(table)
    return created


def subscribe(*, service: str, warehouse: str, name: str) -> None:
    """The subscription, with its slot created on the service's database first (CREATE
    SUBSCRIPTION cannot create it on the same server: it would wait for itself)."""
    # pg_subscription is shared by the server's databases: this database's only.
    here = "(SELECT oid FROM pg_database WHERE datname = current_database())"
    mine = f"SELECT 1 FROM pg_subscription WHERE subname = %s AND subdbid = {here}"
    if execute(warehouse, mine, [name]):
        execute(warehouse, f"ALTER SUBSCRIPTION {name} REFRESH PUBLICATION")
        return
    if not execute(service, "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [name]):
        execute(service, "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", [name])
    execute(
        warehouse,
        f"CREATE SUBSCRIPTION {name} CONNECTION '{service}' PUBLICATION {PUBLICATION} "
        f"WITH (create_slot = false, slot_name = '{name}')",
    )


def synced_wait(*, warehouse: str) -> None:
    """Until every table's initial copy is done (pg_subscription_rel state 'r', ready)."""
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    while True:
        pending = execute(warehouse, "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")[0][0]
        if not pending:
            return
        if time.monotonic() > deadline:
            sys.exit(f"warehouse: {pending} tables still copying after {SYNC_TIMEOUT_S} s")
        time.sleep(0.5)


def main(service_dsn: str, warehouse_dbname: str) -> None:
    service = make_conninfo(service_dsn)
    params = conninfo_to_dict(service)
    admin = make_conninfo(service, dbname="postgres")
    if not execute(admin, "SELECT 1 FROM pg_database WHERE datname = %s", [warehouse_dbname]):
        execute(admin, f'CREATE DATABASE "{warehouse_dbname}"')
    warehouse = make_conninfo(service, dbname=warehouse_dbname)
    execute(warehouse, "CREATE EXTENSION IF NOT EXISTS postgis")
    created = tables_create(service=service, warehouse=warehouse)
    subscribe(service=service, warehouse=warehouse, name=subscription_name(warehouse_dbname))
    synced_wait(warehouse=warehouse)
    print(
        f"==> warehouse {warehouse_dbname} subscribed to {params.get('dbname')} ({len(created)} tables created)",
        file=sys.stderr,
    )
    profile = {
        "WAREHOUSE_HOST": params.get("host") or "127.0.0.1",
        "WAREHOUSE_PORT": params.get("port") or "5432",
        "WAREHOUSE_USER": params.get("user") or "postgres",
        "WAREHOUSE_PASSWORD": params.get("password") or "",
        "WAREHOUSE_DBNAME": warehouse_dbname,
    }
    print("export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in profile.items()))


if __name__ == "__main__":
    main(*sys.argv[1:3])
