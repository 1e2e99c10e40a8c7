-- What the warehouse's own users may do; none is a superuser or may create users or
-- databases. deploy/warehouse/release.py creates them (passwords from their secrets in
-- Secrets Manager, deploy/ze_infra/analytics.py) before it applies this folder, so a
-- password is never in a file. The admin login is the release's and operators' only.
--
-- ze_dms, DMS's Redshift target: writes the replicated tables (COPY from the staging
-- bucket through the namespace's IAM role, then the CDC batches: insert, update, delete)
-- (COPY needs no grant for that role: Redshift lets every user assume the namespace's
-- roles until a superuser runs REVOKE ASSUMEROLE ON ALL FROM PUBLIC)
-- and creates its own control and apply tables (awsdms_*) in the target schema, which it
-- then owns. A replicated table added later is granted here by the migration that
-- creates it (deploy/tests/test_warehouse.py checks the list against the DMS mappings).
--
-- ze_privacy, the daily privacy job (deploy/warehouse/privacy.sql): reads and updates
-- the tables that file names, never deletes (it rounds; nothing is dropped).
--
-- ze_dbt, the warehouse build (warehouse/, deploy/ze_infra/warehouse_build.py): reads the
-- replicated tables (its sources) and owns the schema it builds its models in, where it
-- creates, replaces and drops them. ALTER SCHEMA also hands over a schema an earlier
-- build made as the admin; the models the admin made in it stay the admin's, which
-- deploy/README.md ("Who signs in to Redshift") says how to clear once.

GRANT USAGE, CREATE ON SCHEMA public TO ze_dms;

GRANT SELECT, INSERT, UPDATE, DELETE ON
    public.tracking_ping,
    public.orders_order,
    public.orders_orderevent,
    public.orders_notification,
    public.couriers_courier,
    public.tracking_orderlastlocation,
    public.tracking_courierlastlocation
TO ze_dms;

GRANT USAGE ON SCHEMA public TO ze_privacy;

GRANT SELECT, UPDATE ON
    public.orders_order,
    public.orders_orderevent,
    public.tracking_orderlastlocation,
    public.tracking_courierlastlocation,
    public.tracking_ping
TO ze_privacy;

CREATE SCHEMA IF NOT EXISTS analytics AUTHORIZATION ze_dbt;

ALTER SCHEMA analytics OWNER TO ze_dbt;

GRANT USAGE ON SCHEMA public TO ze_dbt;

GRANT SELECT ON
    public.tracking_ping,
    public.orders_order,
    public.orders_orderevent,
    public.orders_notification,
    public.couriers_courier,
    public.tracking_orderlastlocation,
    public.tracking_courierlastlocation
TO ze_dbt;
