"""Aurora PostgreSQL Serverless v2 (PostGIS), ElastiCache Redis, and their secrets."""

from __future__ import annotations

from aws_cdk import (
    Duration,
    Fn,
    RemovalPolicy,
    SecretValue,
)
from aws_cdk import (
    aws_ec2 as ec2,
)
from aws_cdk import (
    aws_elasticache as elasticache,
)
from aws_cdk import (
    aws_kms as kms,
)
from aws_cdk import (
    aws_logs as logs,
)
from aws_cdk import (
    aws_rds as rds,
)
from aws_cdk import (
    aws_secretsmanager as sm,
)
from constructs import Construct

from .common import retention
from .config import StageConfig

ADMIN_USER = "ze_admin"
APP_USER = "ze_app"
DMS_USER = "ze_dms"


class Database(Construct):
    """The cluster, its parameter group (logical replication for DMS CDC) and three
    logins, each in its own secret:

    - `ze_admin` (rds_superuser): used only by `deploy/eb/db_bootstrap.py` in the
      release task (release.py), to create the PostGIS extension and the two roles below;
    - `ze_app`: owns the database, runs migrations and serves the app;
    - `ze_dms`: rds_replication plus SELECT on the analytics tables, for DMS.
    """

    def __init__(
        self, scope: Construct, id: str, *, cfg: StageConfig, vpc: ec2.IVpc, sg: ec2.ISecurityGroup, key: kms.IKey
    ) -> None:
        super().__init__(scope, id)
        engine = rds.DatabaseClusterEngine.aurora_postgres(
            version=rds.AuroraPostgresEngineVersion.of(
                cfg.aurora_engine_version, cfg.aurora_engine_version.split(".")[0]
            )
        )
        self.parameter_group = rds.ParameterGroup(
            self,
            "ClusterParameters",
            engine=engine,
            description=f"{cfg.prefix}: logical replication for DMS CDC, TLS only",
            parameters={
                # DMS full-load-and-CDC reads the WAL through a logical replication slot.
                "rds.logical_replication": "1",
                "max_replication_slots": "10",
                "max_wal_senders": "10",
                # DMS recommends a sender timeout of at least 10 s; 0 disables it.
                "wal_sender_timeout": "0",
                "rds.force_ssl": "1",
                "log_min_duration_statement": "500",
            },
        )
        removal = RemovalPolicy.SNAPSHOT if cfg.deletion_protection else RemovalPolicy.DESTROY
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=engine,
            cluster_identifier=f"{cfg.prefix}-aurora",
            default_database_name=cfg.database_name,
            credentials=rds.Credentials.from_generated_secret(
                ADMIN_USER, secret_name=f"{cfg.prefix}/aurora/admin", encryption_key=key
            ),
            writer=rds.ClusterInstance.serverless_v2(
                "writer",
                enable_performance_insights=True,
                performance_insight_encryption_key=key,
                auto_minor_version_upgrade=True,
            ),
            readers=[
                rds.ClusterInstance.serverless_v2(
                    f"reader{i + 1}",
                    scale_with_writer=True,
                    enable_performance_insights=True,
                    performance_insight_encryption_key=key,
                    auto_minor_version_upgrade=True,
                )
                for i in range(cfg.aurora_readers)
            ],
            serverless_v2_min_capacity=cfg.aurora_min_acu,
            serverless_v2_max_capacity=cfg.aurora_max_acu,
            parameter_group=self.parameter_group,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[sg],
            storage_encrypted=True,
            storage_encryption_key=key,
            backup=rds.BackupProps(retention=Duration.days(cfg.backup_retention_days), preferred_window="05:00-06:00"),
            preferred_maintenance_window="sun:06:30-sun:07:30",
            deletion_protection=cfg.deletion_protection,
            removal_policy=removal,
            iam_authentication=True,
            copy_tags_to_snapshot=True,
            cloudwatch_logs_exports=["postgresql"],
            monitoring_interval=Duration.seconds(60),
        )
        # Created here (not by RDS) to set its retention and key without a helper Lambda.
        log_group = logs.LogGroup(
            self,
            "PostgresLog",
            log_group_name=f"/aws/rds/cluster/{cfg.prefix}-aurora/postgresql",
            retention=retention(cfg.log_retention_days),
            encryption_key=key,
            removal_policy=removal if removal != RemovalPolicy.SNAPSHOT else RemovalPolicy.RETAIN,
        )
        self.cluster.node.add_dependency(log_group)
        self.admin_secret = self.cluster.secret
        assert self.admin_secret is not None

        def login(name: str, username: str) -> rds.DatabaseSecret:
            secret = rds.DatabaseSecret(
                self, name, username=username, secret_name=f"{cfg.prefix}/aurora/{username}", encryption_key=key
            )
            # Adds host, port, dbname and engine to the JSON, so one secret is a full DSN.
            return secret.attach(self.cluster)  # type: ignore[return-value]

        self.app_secret = login("AppLogin", APP_USER)
        self.dms_secret = login("DmsLogin", DMS_USER)


class Cache(Construct):
    """ElastiCache Redis for the Channels layer and the Django cache: TLS required, an
    AUTH token, encrypted at rest with the stage key. `url_secret` holds the whole
    `rediss://` URL, so the app receives REDIS_URL as one secret."""

    def __init__(
        self, scope: Construct, id: str, *, cfg: StageConfig, vpc: ec2.IVpc, sg: ec2.ISecurityGroup, key: kms.IKey
    ) -> None:
        super().__init__(scope, id)
        self.token_secret = sm.Secret(
            self,
            "AuthToken",
            secret_name=f"{cfg.prefix}/redis/auth-token",
            encryption_key=key,
            generate_secret_string=sm.SecretStringGenerator(
                secret_string_template="{}",
                generate_string_key="token",
                exclude_punctuation=True,
                password_length=64,
            ),
        )
        subnets = elasticache.CfnSubnetGroup(
            self,
            "Subnets",
            description=f"{cfg.prefix} Redis",
            subnet_ids=vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids,
            cache_subnet_group_name=f"{cfg.prefix}-redis",
        )
        token = self.token_secret.secret_value_from_json("token").unsafe_unwrap()
        replicated = cfg.redis_replicas > 0
        self.group = elasticache.CfnReplicationGroup(
            self,
            "Redis",
            replication_group_id=f"{cfg.prefix}-redis",
            replication_group_description=f"{cfg.prefix}: Channels layer and cache",
            engine="redis",
            engine_version=cfg.redis_engine_version,
            cache_node_type=cfg.redis_node_type,
            num_node_groups=1,
            replicas_per_node_group=cfg.redis_replicas,
            automatic_failover_enabled=replicated,
            multi_az_enabled=replicated,
            at_rest_encryption_enabled=True,
            kms_key_id=key.key_arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=token,
            cache_subnet_group_name=subnets.ref,
            security_group_ids=[sg.security_group_id],
            port=6379,
            snapshot_retention_limit=1 if cfg.name == "dev" else 7,
            auto_minor_version_upgrade=True,
            preferred_maintenance_window="sun:07:30-sun:08:30",
        )
        url = Fn.join(
            "",
            [
                "rediss://:",
                token,
                "@",
                self.group.attr_primary_end_point_address,
                ":",
                self.group.attr_primary_end_point_port,
                "/0",
            ],
        )
        self.url_secret = sm.Secret(
            self,
            "Url",
            secret_name=f"{cfg.prefix}/redis/url",
            encryption_key=key,
            description="REDIS_URL for the app: rediss://:<token>@<primary endpoint>:6379/0",
            # "unsafe" only in name: the template holds a {{resolve:secretsmanager}} reference
            # to the token and the endpoint, never the token itself.
            secret_string_value=SecretValue.unsafe_plain_text(url),
        )
