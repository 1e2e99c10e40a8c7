"""Redshift Serverless for the analytics team, fed by DMS (full load, then CDC) from
Aurora through a logical replication slot."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import (
    Fn,
    Stack,
)
from aws_cdk import (
    aws_dms as dms,
)
from aws_cdk import (
    aws_ec2 as ec2,
)
from aws_cdk import (
    aws_iam as iam,
)
from aws_cdk import (
    aws_kms as kms,
)
from aws_cdk import (
    aws_redshiftserverless as redshift,
)
from aws_cdk import (
    aws_scheduler as scheduler,
)
from aws_cdk import (
    aws_secretsmanager as sm,
)
from constructs import Construct

from . import analytics_tables as tables
from .common import private_bucket, service_for_this_account
from .config import StageConfig
from .data import Database
from .network import Network

TASK_SETTINGS: dict[str, Any] = {
    "TargetMetadata": {
        # `attributes` (jsonb) is a LOB to DMS; app payloads are small.
        "SupportLobs": True,
        "LimitedSizeLobMode": True,
        "LobMaxSize": 64,
    },
    # The warehouse keeps history Aurora no longer has (pings past the 90-day retention),
    # so DMS never drops or empties a target table. DO_NOTHING is the only safe mode:
    # every `tracking_ping_p*` partition is loaded as its own table into the one merged
    # `tracking_ping`, so DROP_AND_CREATE would drop it, and TRUNCATE_BEFORE_LOAD empty
    # it, once per partition (keeping only the last day loaded), and either would wipe
    # the older history on any reload. The tables exist before the task first starts,
    # with our distribution and sort keys (deploy/warehouse/migrations/).
    "FullLoadSettings": {"TargetTablePrepMode": "DO_NOTHING", "MaxFullLoadSubTasks": 4},
    # Source DDL never removes history downstream: dropping an expired partition (after
    # its DETACH, an ALTER of the excluded parent) leaves the warehouse's rows alone, a
    # TRUNCATE is not propagated, and an ALTER (a dropped or renamed column) is not
    # replayed on Redshift either: the warehouse schema changes only through the versioned
    # files in deploy/warehouse/, applied before the migration that needs them. DDL
    # capture stays on (the source endpoint) so new daily partitions join the task.
    "ChangeProcessingDdlHandlingPolicy": {
        "HandleSourceTableDropped": False,
        "HandleSourceTableTruncated": False,
        "HandleSourceTableAltered": False,
    },
    # Redshift wants few large transactions, and Redshift Serverless bills every wake-up
    # (60 s minimum at the base RPUs): DMS applies changes in batches 10 to 15 minutes
    # apart. Analytics data is that fresh; the live map never reads Redshift.
    "ChangeProcessingTuning": {"BatchApplyTimeoutMin": 600, "BatchApplyTimeoutMax": 900, "BatchApplyMemoryLimit": 500},
    # A row DMS cannot write as it is (a conversion error, a value cut to fit) stops the
    # task, which the release and the DMS alarms report, instead of being logged and skipped.
    "ErrorBehavior": {"DataErrorPolicy": "STOP_TASK", "DataTruncationErrorPolicy": "STOP_TASK"},
    "Logging": {"EnableLogging": True},
    "ControlTablesSettings": {"HistoryTimeslotInMinutes": 5},
}
TASK_SETTINGS["TargetMetadata"]["BatchApplyEnabled"] = True


class Analytics(Construct):
    def __init__(
        self, scope: Construct, id: str, *, cfg: StageConfig, network: Network, database: Database, key: kms.IKey
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        vpc = network.vpc
        isolated = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids
        private = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids

        # --- Redshift Serverless --------------------------------------------------------
        self.admin_secret = sm.Secret(
            self,
            "RedshiftAdmin",
            secret_name=f"{cfg.prefix}/redshift/admin",
            encryption_key=key,
            generate_secret_string=sm.SecretStringGenerator(
                secret_string_template=json.dumps({"username": "ze_admin"}),
                generate_string_key="password",
                exclude_punctuation=True,
                password_length=32,
            ),
        )
        self.staging_bucket = private_bucket(self, "DmsStaging", cfg=cfg, key=key, auto_delete_objects=False)
        # DMS writes CSV files to the staging bucket and has Redshift COPY them in.
        self.dms_s3_role = iam.Role(
            self,
            "DmsRedshiftS3Role",
            role_name=f"{cfg.prefix}-dms-redshift-s3",
            assumed_by=iam.CompositePrincipal(
                service_for_this_account(self, "dms.amazonaws.com"), iam.ServicePrincipal("redshift.amazonaws.com")
            ),
        )
        self.staging_bucket.grant_read_write(self.dms_s3_role)
        self.staging_bucket.grant_delete(self.dms_s3_role)

        self.namespace = redshift.CfnNamespace(
            self,
            "Namespace",
            namespace_name=f"{cfg.prefix}-analytics",
            db_name=cfg.redshift_database,
            admin_username="ze_admin",
            admin_user_password=self.admin_secret.secret_value_from_json("password").unsafe_unwrap(),
            kms_key_id=key.key_arn,
            iam_roles=[self.dms_s3_role.role_arn],
            default_iam_role_arn=self.dms_s3_role.role_arn,
            log_exports=["userlog", "connectionlog", "useractivitylog"],
        )
        self.workgroup = redshift.CfnWorkgroup(
            self,
            "Workgroup",
            workgroup_name=f"{cfg.prefix}-analytics",
            namespace_name=self.namespace.namespace_name,
            base_capacity=cfg.redshift_base_rpu,
            enhanced_vpc_routing=True,
            publicly_accessible=False,
            subnet_ids=isolated,
            security_group_ids=[network.redshift_sg.security_group_id],
            config_parameters=[
                redshift.CfnWorkgroup.ConfigParameterProperty(parameter_key="require_ssl", parameter_value="true"),
                redshift.CfnWorkgroup.ConfigParameterProperty(
                    parameter_key="enable_user_activity_logging", parameter_value="true"
                ),
            ],
        )
        self.workgroup.node.add_dependency(self.namespace)

        # The users DMS, the privacy job and the warehouse build sign in as, none a
        # superuser: the release step (deploy/warehouse/release.py) creates them with these
        # passwords and sets them again every release (a template change makes CloudFormation
        # generate a new one), and the warehouse migrations grant them what they need. DMS
        # reads its whole connection from its secret, as its source endpoint does.
        def login_secret(id: str, name: str, template: str) -> sm.Secret:
            return sm.Secret(
                self,
                id,
                secret_name=f"{cfg.prefix}/redshift/{name}",
                encryption_key=key,
                generate_secret_string=sm.SecretStringGenerator(
                    secret_string_template=template,
                    generate_string_key="password",
                    exclude_punctuation=True,
                    password_length=32,
                ),
            )

        dms_login = {"username": tables.REDSHIFT_DMS_USER, "host": self.workgroup.attr_workgroup_endpoint_address}
        self.dms_secret = login_secret("RedshiftDms", "dms", stack.to_json_string({**dms_login, "port": 5439}))
        self.dbt_secret = login_secret("RedshiftDbt", "dbt", json.dumps({"username": tables.REDSHIFT_DBT_USER}))
        self.privacy_secret = login_secret(
            "RedshiftPrivacy", "privacy", json.dumps({"username": tables.REDSHIFT_PRIVACY_USER})
        )

        # --- DMS ----------------------------------------------------------------------
        # DMS's account-wide roles (dms-vpc-role, dms-cloudwatch-logs-role) are the account
        # stack's (account.py), deployed before any stage.
        subnet_group = dms.CfnReplicationSubnetGroup(
            self,
            "SubnetGroup",
            replication_subnet_group_identifier=f"{cfg.prefix}-dms",
            replication_subnet_group_description=f"{cfg.prefix} DMS",
            subnet_ids=private,
        )

        self.instance = dms.CfnReplicationInstance(
            self,
            "ReplicationInstance",
            replication_instance_identifier=f"{cfg.prefix}-dms",
            replication_instance_class=cfg.dms_instance_class,
            allocated_storage=cfg.dms_allocated_storage_gb,
            engine_version=cfg.dms_engine_version,
            multi_az=cfg.dms_multi_az,
            publicly_accessible=False,
            auto_minor_version_upgrade=True,
            kms_key_id=key.key_arn,
            replication_subnet_group_identifier=subnet_group.ref,
            vpc_security_group_ids=[network.dms_sg.security_group_id],
        )

        # DMS reads the ze_dms login from Secrets Manager through this role.
        self.secrets_role = iam.Role(
            self,
            "DmsSecretsRole",
            role_name=f"{cfg.prefix}-dms-secrets",
            assumed_by=service_for_this_account(self, f"dms.{stack.region}.amazonaws.com"),
        )
        database.dms_secret.grant_read(self.secrets_role)

        self.source = dms.CfnEndpoint(
            self,
            "Source",
            endpoint_identifier=f"{cfg.prefix}-aurora-source",
            endpoint_type="source",
            engine_name="aurora-postgresql",
            database_name=cfg.database_name,
            ssl_mode="require",
            kms_key_id=key.key_arn,
            postgre_sql_settings=dms.CfnEndpoint.PostgreSqlSettingsProperty(
                secrets_manager_access_role_arn=self.secrets_role.role_arn,
                secrets_manager_secret_id=database.dms_secret.secret_arn,
                # Heartbeats advance the slot's restart LSN on quiet nights, so WAL is freed.
                # DMS creates its heartbeat table there (deploy/eb/db_bootstrap.py grants it).
                heartbeat_enable=True,
                heartbeat_frequency=5,
                heartbeat_schema=tables.DMS_HEARTBEAT_SCHEMA,
                # New daily partitions must reach the task: DMS records DDL in its audit table.
                capture_ddls=True,
                # A schema of the admin login, out of reach of ze_app (deploy/eb/db_bootstrap.py).
                ddl_artifacts_schema="awsdms",
                # test_decoding reports a row under the partition that holds it, which is
                # what the table mappings expect (tests/tracking/test_replication.py decodes
                # with it); pglogical would need the extension in Aurora's
                # shared_preload_libraries and a restart. No SlotName: DMS creates its own
                # slot on the first start (a named slot must exist already and the task
                # would need a CdcStartPosition in it).
                plugin_name="test-decoding",
                # A jsonb value longer than LobMaxSize stops the task instead of being cut.
                fail_tasks_on_lob_truncation=True,
            ),
        )
        # DMS reads the Redshift ze_dms login through a role of its own.
        self.warehouse_secrets_role = iam.Role(
            self,
            "DmsWarehouseSecretsRole",
            role_name=f"{cfg.prefix}-dms-warehouse-secrets",
            assumed_by=service_for_this_account(self, f"dms.{stack.region}.amazonaws.com"),
        )
        self.dms_secret.grant_read(self.warehouse_secrets_role)
        self.target = dms.CfnEndpoint(
            self,
            "Target",
            endpoint_identifier=f"{cfg.prefix}-redshift-target",
            endpoint_type="target",
            engine_name="redshift-serverless",
            database_name=cfg.redshift_database,
            kms_key_id=key.key_arn,
            redshift_settings=dms.CfnEndpoint.RedshiftSettingsProperty(
                # Host, port, user and password: the secret's (no login in the template).
                secrets_manager_access_role_arn=self.warehouse_secrets_role.role_arn,
                secrets_manager_secret_id=self.dms_secret.secret_arn,
                bucket_name=self.staging_bucket.bucket_name,
                service_access_role_arn=self.dms_s3_role.role_arn,
                encryption_mode="SSE_KMS",
                server_side_encryption_kms_key_id=key.key_arn,
                # TruncateColumns and AcceptAnyDate stay off (their default): a value that
                # does not fit its column fails the load instead of arriving cut or NULL.
            ),
        )
        self.task = dms.CfnReplicationTask(
            self,
            "Task",
            replication_task_identifier=f"{cfg.prefix}-analytics",
            migration_type="full-load-and-cdc",
            replication_instance_arn=self.instance.ref,
            source_endpoint_arn=self.source.ref,
            target_endpoint_arn=self.target.ref,
            table_mappings=json.dumps(tables.table_mappings()),
            replication_task_settings=json.dumps(TASK_SETTINGS),
        )
        # CloudFormation creates the task and never starts it (AWS::DMS::ReplicationTask has
        # no start property, and no custom resource starts it here). The release step
        # (deploy/warehouse/release.py, after the migrations and grants) creates the Redshift
        # tables the task loads into, then starts it once; later releases resume it.
        # The task's CloudWatch dimension is its resource id, the last field of its ARN.
        self.task_resource_id = Fn.select(6, Fn.split(":", self.task.ref))

        # --- Privacy rule: destinations rounded in the warehouse after 90 days ----------
        privacy_role = iam.Role(
            self,
            "PrivacyRuleRole",
            role_name=f"{cfg.prefix}-warehouse-privacy",
            assumed_by=service_for_this_account(self, "scheduler.amazonaws.com"),
        )
        privacy_role.add_to_policy(
            iam.PolicyStatement(
                actions=["redshift-data:BatchExecuteStatement"],
                resources=[self.workgroup.attr_workgroup_workgroup_arn],
            )
        )
        # Its own login only (ze_privacy, UPDATE on the tables privacy.sql names): the
        # Data API reads the secret as this role.
        self.privacy_secret.grant_read(privacy_role)
        # Its end arrives as an EventBridge event under this name (deploy/ze_infra/monitoring.py).
        self.privacy_statement_name = f"{cfg.prefix}-warehouse-privacy"
        self.privacy_schedule = scheduler.CfnSchedule(
            self,
            "PrivacyRule",
            name=f"{cfg.prefix}-warehouse-privacy",
            description="Round consumers' destinations older than 90 days in Redshift (deploy/warehouse/privacy.sql)",
            # 03:30 UTC, 00:30 in Sao Paulo: the quietest hour, between DMS's batches.
            schedule_expression="cron(30 3 * * ? *)",
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            kms_key_arn=key.key_arn,
            target=scheduler.CfnSchedule.TargetProperty(
                # EventBridge Scheduler's universal target calls the Redshift Data API itself.
                arn="arn:aws:scheduler:::aws-sdk:redshiftdata:batchExecuteStatement",
                role_arn=privacy_role.role_arn,
                input=stack.to_json_string(
                    {
                        "WorkgroupName": self.workgroup.workgroup_name,
                        "Database": cfg.redshift_database,
                        "SecretArn": self.privacy_secret.secret_arn,
                        "Sqls": tables.sql_statements(path=tables.WAREHOUSE_SQL / "privacy.sql"),
                        "StatementName": self.privacy_statement_name,
                        # The call returns before the SQL runs: the Data API reports the
                        # batch's end (FINISHED or FAILED) as an EventBridge event.
                        "WithEvent": True,
                    }
                ),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=3, maximum_event_age_in_seconds=3600
                ),
            ),
        )
