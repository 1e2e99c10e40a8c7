"""One stack per stage: every resource of Ze tracking in one AWS region."""

from __future__ import annotations

from aws_cdk import Aspects, CfnOutput, Duration, RemovalPolicy, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from .analytics import Analytics
from .checkov import CheckovSkips
from .common import KeptExceptOnCreate, LogGroupsOnKey
from .compute import Compute
from .config import StageConfig
from .data import Cache, Database
from .messaging import Messaging
from .monitoring import Monitoring
from .network import Network
from .waf import Waf
from .warehouse_build import WarehouseBuild


class ZeTrackingStack(Stack):
    def __init__(self, scope: Construct, id: str, *, cfg: StageConfig, **kwargs) -> None:
        super().__init__(
            scope, id, description=f"Ze tracking ({cfg.name}): courier GPS ingest, live map, analytics", **kwargs
        )
        self.cfg = cfg
        # One customer-managed key per data class, rotated yearly: the database (Aurora,
        # Redis and their logins), the logs (every log group, LogGroupsOnKey below), the
        # warehouse (Redshift, DMS, its staging bucket, the warehouse logins, the warehouse
        # build) and the rest (queues, topics, the app's secrets, exports).
        self.key = self._key("DataKey", alias=f"alias/{cfg.prefix}", description=f"{cfg.prefix}: data at rest")
        self.database_key = self._key(
            "DatabaseKey", alias=f"alias/{cfg.prefix}/database", description=f"{cfg.prefix}: Aurora and Redis"
        )
        self.warehouse_key = self._key(
            "WarehouseKey",
            alias=f"alias/{cfg.prefix}/warehouse",
            description=f"{cfg.prefix}: Redshift, DMS and the warehouse build",
        )
        self.logs_key = self._key("LogsKey", alias=f"alias/{cfg.prefix}/logs", description=f"{cfg.prefix}: log groups")
        # CloudWatch Logs encrypts the log groups with the logs key: only log groups of this
        # account and region, named in the encryption context that CloudWatch Logs sends
        # with every call (its documented key-policy condition).
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
        self.logs_key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:*"
                        )
                    }
                },
            )
        )

        self.network = Network(self, "Network", cfg=cfg, key=self.key)
        db_sg, redis_sg = self.network.db_sg, self.network.redis_sg
        self.database = Database(self, "Database", cfg=cfg, vpc=self.network.vpc, sg=db_sg, key=self.database_key)
        self.cache = Cache(self, "Cache", cfg=cfg, vpc=self.network.vpc, sg=redis_sg, key=self.database_key)
        self.messaging = Messaging(self, "Messaging", cfg=cfg, key=self.key)
        self.waf = Waf(self, "Waf", cfg=cfg, key=self.key)
        self.compute = Compute(
            self,
            "App",
            cfg=cfg,
            network=self.network,
            database=self.database,
            cache=self.cache,
            messaging=self.messaging,
            key=self.key,
            web_acl_arn=self.waf.web_acl.attr_arn,
        )
        self.analytics = Analytics(
            self, "Analytics", cfg=cfg, network=self.network, database=self.database, key=self.warehouse_key
        )
        self.warehouse_build = WarehouseBuild(
            self,
            "WarehouseBuild",
            cfg=cfg,
            network=self.network,
            analytics=self.analytics,
            key=self.warehouse_key,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            cfg=cfg,
            messaging=self.messaging,
            database=self.database,
            cache=self.cache,
            compute=self.compute,
            analytics=self.analytics,
            waf=self.waf,
            topic=self.messaging.alarm_topic,
            key=self.key,
        )

        Tags.of(self).add("project", "ze-tracking")
        Tags.of(self).add("stage", cfg.name)
        for k, v in cfg.tags.items():
            Tags.of(self).add(k, v)
        Aspects.of(self).add(CheckovSkips())
        Aspects.of(self).add(KeptExceptOnCreate())
        Aspects.of(self).add(LogGroupsOnKey(self.logs_key))

        CfnOutput(self, "WebEnvironmentUrl", value=self.compute.web.attr_endpoint_url)
        CfnOutput(self, "NotificationsTopicArn", value=self.messaging.notifications_topic.topic_arn)
        CfnOutput(self, "RedshiftEndpoint", value=self.analytics.workgroup.attr_workgroup_endpoint_address)
        # Read by the warehouse release step (deploy/warehouse/release.py).
        CfnOutput(self, "RedshiftWorkgroupName", value=self.analytics.workgroup.workgroup_name)
        CfnOutput(self, "RedshiftDatabase", value=cfg.redshift_database)
        CfnOutput(self, "RedshiftAdminSecretArn", value=self.analytics.admin_secret.secret_arn)
        CfnOutput(self, "RedshiftDmsSecretArn", value=self.analytics.dms_secret.secret_arn)
        CfnOutput(self, "RedshiftPrivacySecretArn", value=self.analytics.privacy_secret.secret_arn)
        CfnOutput(self, "RedshiftDbtSecretArn", value=self.analytics.dbt_secret.secret_arn)
        CfnOutput(self, "AnalyticsTaskArn", value=self.analytics.task.ref)

    def _key(self, id: str, *, alias: str, description: str) -> kms.Key:
        return kms.Key(
            self,
            id,
            alias=alias,
            description=description,
            enable_key_rotation=True,
            pending_window=Duration.days(30),
            removal_policy=RemovalPolicy.RETAIN if self.cfg.name == "prod" else RemovalPolicy.DESTROY,
        )
