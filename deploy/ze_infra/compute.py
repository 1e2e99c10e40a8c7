"""Elastic Beanstalk: one application, three environments built from one source bundle.

- `web`: Django behind nginx (REST under gunicorn, websockets under uvicorn) behind an ALB
  that carries WebSockets; health check on /healthz; scales on ALB requests per target
  (see scaling/index.py).
- `worker`: Celery workers consuming the three queues; tracks the pings backlog per
  instance (messages waiting and in flight / instances in service) and steps out on the
  age of the oldest pings batch.
- `scheduler`: Celery beat, exactly one instance (min = max = 1), so periodic tasks
  are scheduled once.

`Procfile` starts `deploy/eb/run-process.sh`, which reads ZE_PROCESS to pick the role.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import (
    ArnFormat,
    CfnParameter,
    Duration,
    RemovalPolicy,
    Fn,
    Stack,
    aws_ec2 as ec2,
    aws_elasticbeanstalk as eb,
    aws_events as events,
    aws_events_targets as targets,
    aws_iam as iam,
    aws_kms as kms,
    aws_lambda as lambda_,
    aws_logs as logs,
    aws_sqs as sqs,
    aws_secretsmanager as sm,
    custom_resources as cr,
)
from constructs import Construct

from pathlib import Path

from .capacity import capacity_measured, web_requests_per_target_per_minute, worker_backlog_per_instance
from .common import EB_RESOURCE_DESCRIBES, eb_resources_read_statements, retention
from .config import CELERY_QUEUES, METRICS_NAMESPACE, PLATFORM_BRANCHES, StageConfig
from .data import Cache, Database
from .messaging import RETENTION_DAYS, VISIBILITY_TIMEOUT_SECONDS, Messaging
from .network import Network
from .release import Release

# Where the prebuild hook installs GDAL, GEOS and PROJ's data (Amazon Linux 2023 ships
# none of them); see .platform/hooks/prebuild/10_geo_libraries.sh.
GEO_DIR = "/opt/ze-geo"
# Where deploy/eb/rds_ca.sh installs the RDS global CA bundle (instances and release task).
RDS_CA_BUNDLE = "/opt/ze-rds/global-bundle.pem"

HEALTH_CONFIG = {
    "Version": 1,
    "CloudWatchMetrics": {
        "Environment": {
            "ApplicationRequests5xx": 60,
            "ApplicationRequestsTotal": 60,
            "ApplicationLatencyP99": 60,
            "EnvironmentHealth": 60,
        },
        # Per instance, for the disk-used alarms (monitoring.py).
        "Instance": {"RootFilesystemUtil": 60},
    },
    "Rules": {"Environment": {"Application": {"ApplicationRequests4xx": {"Enabled": False}}}},
}

# Written by the app (infra/observability/metrics.py, infra/observability/logging.py), shipped by
# the CloudWatch agent (.ebextensions/20_metrics.config).
METRICS_EMF_PATH = "/var/log/ze-tracking/metrics.log"
APP_LOG_PATH = "/var/log/ze-tracking/app.log"

# The logs EB streams from every instance of the Amazon Linux 2023 platforms (the Procfile's
# one process is `web`), and its health log.
# https://docs.aws.amazon.com/elasticbeanstalk/latest/dg/AWSHowTo.cloudwatchlogs.html
EB_LOG_GROUP_PATHS: tuple[str, ...] = (
    "/var/log/eb-engine.log",
    "/var/log/eb-hooks.log",
    "/var/log/web.stdout.log",
    "/var/log/nginx/access.log",
    "/var/log/nginx/error.log",
    "/environment-health.log",
)

# Worker-tier environments publish their health for the environment-health alarms.
DAEMON_HEALTH_CONFIG = {
    "Version": 1,
    "CloudWatchMetrics": {"Environment": {"EnvironmentHealth": 60}, "Instance": {"RootFilesystemUtil": 60}},
}

SQS_CONSUME = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
]
SQS_PRODUCE = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]


@dataclass(frozen=True)
class Setting:
    namespace: str
    name: str
    value: str


def _settings(rows: list[Setting]) -> list[eb.CfnEnvironment.OptionSettingProperty]:
    return [eb.CfnEnvironment.OptionSettingProperty(namespace=r.namespace, option_name=r.name, value=r.value) for r in rows]


class Compute(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cfg: StageConfig,
        network: Network,
        database: Database,
        cache: Cache,
        messaging: Messaging,
        key: kms.IKey,
        web_acl_arn: str,
    ) -> None:
        super().__init__(scope, id)
        self.cfg = cfg
        stack = Stack.of(self)
        vpc = network.vpc
        self.vpc_id = vpc.vpc_id
        self.profiles: dict[str, iam.CfnInstanceProfile] = {}

        certificate = CfnParameter(
            stack,
            "CertificateArn",
            type="String",
            description=f"ACM certificate for {cfg.domain_name} (HTTPS and WSS on the ALB)",
            allowed_pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$",
        )

        self.django_secret = sm.Secret(
            self,
            "DjangoSecretKey",
            secret_name=f"{cfg.prefix}/django/secret-key",
            encryption_key=key,
            generate_secret_string=sm.SecretStringGenerator(password_length=64, exclude_punctuation=True),
        )
        self.webhook_secret = sm.Secret(
            self,
            "NotificationsWebhookSecret",
            secret_name=f"{cfg.prefix}/notifications/webhook-secret",
            encryption_key=key,
            generate_secret_string=sm.SecretStringGenerator(password_length=48, exclude_punctuation=True),
        )

        # No ALB access logs: they hold every request's full URL, tracking codes included,
        # and cannot redact it. WAF (path redacted) and nginx (tracking routes without their
        # code) log every request instead.

        self.platform_arn = self._platform_arn_lookup()

        # The app writes its metrics as CloudWatch embedded-metric-format lines to a file
        # of its own (stdout reaches CloudWatch with a syslog prefix, which EMF cannot
        # parse); the CloudWatch agent ships it here (.ebextensions/20_metrics.config) and
        # CloudWatch turns the lines into metrics. Under /aws/elasticbeanstalk/<prefix> so
        # the instance roles' log statement covers it.
        self.metrics_log_group = logs.LogGroup(
            self,
            "MetricsLogGroup",
            log_group_name=f"/aws/elasticbeanstalk/{cfg.prefix}/metrics",
            retention=retention(cfg.log_retention_days),
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY if cfg.name == "dev" else RemovalPolicy.RETAIN,
        )

        # The app's own log lines, one JSON object each, as a file: on stdout they reach
        # CloudWatch behind a syslog prefix, and Logs Insights and metric filters then see
        # no fields.
        self.app_log_group = logs.LogGroup(
            self,
            "AppLogGroup",
            log_group_name=f"/aws/elasticbeanstalk/{cfg.prefix}/app",
            retention=retention(cfg.log_retention_days),
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY if cfg.name == "dev" else RemovalPolicy.RETAIN,
        )

        self.application = eb.CfnApplication(
            self,
            "Application",
            application_name=cfg.prefix,
            description="Ze tracking: courier GPS ingest, live map, notifications",
        )

        # --- roles ------------------------------------------------------------------
        self.service_role = iam.Role(
            self,
            "ServiceRole",
            role_name=f"{cfg.prefix}-eb-service",
            assumed_by=iam.ServicePrincipal(
                "elasticbeanstalk.amazonaws.com",
                conditions={"StringEquals": {"sts:ExternalId": "elasticbeanstalk"}},
            ),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSElasticBeanstalkEnhancedHealth"),
                iam.ManagedPolicy.from_aws_managed_policy_name("AWSElasticBeanstalkManagedUpdatesCustomerRolePolicy"),
            ],
        )

        app_secrets: list[sm.ISecret] = [
            self.django_secret, self.webhook_secret, database.app_secret, cache.url_secret,
        ]
        # Error reports to Sentry, only when a stage names a secret holding the DSN.
        sentry_dsn = (
            sm.Secret.from_secret_complete_arn(self, "SentryDsn", cfg.sentry_dsn_secret_arn)
            if cfg.sentry_dsn_secret_arn
            else None
        )
        if sentry_dsn:
            app_secrets.append(sentry_dsn)
        queues = messaging.queues

        self.web_role = self._instance_role(
            "Web",
            produce=list(queues.values()),
            consume=[],
            # Never the admin or DMS logins: the release task (release.py) holds those.
            secrets=app_secrets,
            key=key,
        )
        self.worker_role = self._instance_role(
            "Worker",
            produce=list(queues.values()),
            consume=list(queues.values()),
            secrets=app_secrets,
            key=key,
            daemon_queue=messaging,
        )
        messaging.notifications_topic.grant_publish(self.worker_role)
        self.scheduler_role = self._instance_role(
            "Scheduler",
            # Beat enqueues maintenance tasks and the periodic retry of notifications
            # (routed to the notifications queue); never pings.
            produce=[queues["maintenance"], queues["notifications"]],
            consume=[],
            secrets=app_secrets,
            key=key,
            daemon_queue=messaging,
        )

        # --- environments -----------------------------------------------------------
        environment = {
            "DJANGO_SETTINGS_MODULE": "ze_tracking.settings",
            "DJANGO_DEBUG": "false",
            # localhost: nginx rewrites the Host of the ALB health check (see
            # .platform/nginx/conf.d/elasticbeanstalk/10_ze_tracking.conf).
            "DJANGO_ALLOWED_HOSTS": f"{cfg.domain_name},localhost",
            "DJANGO_CSRF_TRUSTED_ORIGINS": f"https://{cfg.domain_name}",
            # Staff log in with a TOTP code or a recovery code (couriers/staff_access.py).
            "STAFF_OTP_REQUIRED": "true",
            "DB_HOST": database.cluster.cluster_endpoint.hostname,
            "DB_PORT": "5432",
            "DB_NAME": cfg.database_name,
            "DB_READER_HOST": database.cluster.cluster_read_endpoint.hostname,
            "AWS_REGION": stack.region,
            "AWS_DEFAULT_REGION": stack.region,
            "CELERY_BROKER_URL": "sqs://",
            # The queues' own numbers, which the app checks its retry delays and time limits
            # against (ze_tracking/settings/celery.py, infra/queue/checks.py).
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_SECONDS),
            "TASK_RETRY_MAX_AGE_S": str(RETENTION_DAYS * 86400),
            **{f"SQS_{name.upper()}_QUEUE_URL": queues[name].queue_url for name in CELERY_QUEUES},
            "NOTIFICATIONS_BACKEND": "sns",
            "NOTIFICATIONS_SNS_TOPIC_ARN": messaging.notifications_topic.topic_arn,
            # The tracking link in consumer messages.
            "PUBLIC_BASE_URL": f"https://{cfg.domain_name}",
            # X-Forwarded-For is "client, ALB" once nginx appends the ALB's address: the
            # tracking link's rate limit keys on the client, two hops from the right.
            "DRF_NUM_PROXIES": "2",
            # Application metrics: EMF lines to a file the CloudWatch agent ships
            # (infra/observability/metrics.py); the agent reads the log group name from here.
            "METRICS_EMF_PATH": METRICS_EMF_PATH,
            "METRICS_EMF_LOG_GROUP": self.metrics_log_group.log_group_name,
            "METRICS_NAMESPACE": METRICS_NAMESPACE,
            "LOG_JSON_PATH": APP_LOG_PATH,
            "APP_LOG_GROUP": self.app_log_group.log_group_name,
            "METRICS_STAGE": cfg.name,
            "GDAL_LIBRARY_PATH": f"{GEO_DIR}/lib/libgdal.so",
            "GEOS_LIBRARY_PATH": f"{GEO_DIR}/lib/libgeos_c.so",
            "PROJ_DATA": f"{GEO_DIR}/share/proj",
            "GDAL_DATA": f"{GEO_DIR}/share/gdal",
            # TLS to Aurora that checks the server's certificate and host name against the
            # RDS CA bundle deploy/eb/rds_ca.sh installs (checked against a pinned sha256).
            "DATABASE_SSLMODE": "verify-full",
            "DATABASE_SSLROOTCERT": RDS_CA_BUNDLE,
        }
        secrets = {
            "DJANGO_SECRET_KEY": self.django_secret.secret_arn,
            "NOTIFICATIONS_WEBHOOK_SECRET": self.webhook_secret.secret_arn,
            "REDIS_URL": cache.url_secret.secret_arn,
            # JSON keys of the ze_app login (platforms released on or after 2026-01-13).
            "DB_USER": Fn.join(":", [database.app_secret.secret_arn, "username"]),
            "DB_PASSWORD": Fn.join(":", [database.app_secret.secret_arn, "password"]),
            **({"SENTRY_DSN": sentry_dsn.secret_arn} if sentry_dsn else {}),
        }

        private = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids
        public = vpc.select_subnets(subnet_type=ec2.SubnetType.PUBLIC).subnet_ids

        web_rows = [
            *self._common_rows(profile="Web", sg=network.web_sg, subnets=private),
            Setting("aws:ec2:instances", "InstanceTypes", cfg.web_instance_type),
            Setting("aws:autoscaling:asg", "MinSize", str(cfg.web_min_instances)),
            Setting("aws:autoscaling:asg", "MaxSize", str(cfg.web_max_instances)),
            Setting("aws:elasticbeanstalk:environment", "EnvironmentType", "LoadBalanced"),
            Setting("aws:elasticbeanstalk:environment", "LoadBalancerType", "application"),
            Setting("aws:ec2:vpc", "ELBSubnets", Fn.join(",", public)),
            Setting("aws:ec2:vpc", "ELBScheme", "public"),
            Setting("aws:elbv2:loadbalancer", "SecurityGroups", network.alb_sg.security_group_id),
            Setting("aws:elbv2:loadbalancer", "ManagedSecurityGroup", network.alb_sg.security_group_id),
            # WebSocket connections stay open; Channels clients ping well inside this.
            Setting("aws:elbv2:loadbalancer", "IdleTimeout", "300"),
            Setting("aws:elbv2:loadbalancer", "AccessLogsS3Enabled", "false"),
            Setting("aws:elbv2:listener:default", "ListenerEnabled", "false"),
            Setting("aws:elbv2:listener:443", "Protocol", "HTTPS"),
            Setting("aws:elbv2:listener:443", "SSLCertificateArns", certificate.value_as_string),
            Setting("aws:elbv2:listener:443", "SSLPolicy", "ELBSecurityPolicy-TLS13-1-2-2021-06"),
            Setting("aws:elasticbeanstalk:environment:process:default", "Port", "80"),
            Setting("aws:elasticbeanstalk:environment:process:default", "Protocol", "HTTP"),
            Setting("aws:elasticbeanstalk:environment:process:default", "HealthCheckPath", "/healthz"),
            Setting("aws:elasticbeanstalk:environment:process:default", "MatcherHTTPCode", "200"),
            Setting("aws:elasticbeanstalk:environment:process:default", "HealthCheckInterval", "15"),
            Setting("aws:elasticbeanstalk:environment:process:default", "DeregistrationDelay", "30"),
            Setting("aws:elasticbeanstalk:environment:proxy:staticfiles", "/static", "staticfiles"),
            # Publish request counts to CloudWatch, for the 5xx-rate alarm (monitoring.py).
            Setting("aws:elasticbeanstalk:healthreporting:system", "ConfigDocument", json.dumps(HEALTH_CONFIG, sort_keys=True)),
            *self._rolling_rows(min_instances=cfg.web_min_instances, max_instances=cfg.web_max_instances),
            # Read by the bundle's .ebextensions/40_web_load_balancer.config, which associates
            # the web ACL with EB's load balancer in EB's stack.
            Setting("aws:elasticbeanstalk:customoption", "WebAclArn", web_acl_arn),
        ]
        self.web = self._environment(
            "Web", "web", web_rows, environment={**environment, "ZE_PROCESS": "web",
            "WEB_CONCURRENCY": "2"}, secrets=secrets, tier="WebServer",
        )

        worker_rows = [
            *self._common_rows(profile="Worker", sg=network.worker_sg, subnets=private),
            *self._daemon_rows(messaging),
            Setting("aws:ec2:instances", "InstanceTypes", cfg.worker_instance_type),
            Setting("aws:autoscaling:asg", "MinSize", str(cfg.worker_min_instances)),
            Setting("aws:autoscaling:asg", "MaxSize", str(cfg.worker_max_instances)),
            *self._rolling_rows(min_instances=cfg.worker_min_instances, max_instances=cfg.worker_max_instances),
        ]
        self.worker = self._environment(
            "Worker", "worker", worker_rows,
            environment={**environment, "ZE_PROCESS": "worker", "CELERY_CONCURRENCY": str(cfg.worker_concurrency)},
            secrets=secrets, tier="Worker",
        )

        scheduler_rows = [
            *self._common_rows(profile="Scheduler", sg=network.worker_sg, subnets=private),
            *self._daemon_rows(messaging),
            Setting("aws:ec2:instances", "InstanceTypes", cfg.scheduler_instance_type),
            # One beat instance. Deploys and managed platform updates are immutable (the new
            # instance starts before the old one stops): celery-redbeat's Redis lock keeps
            # the second beat waiting until the first one lets go, so nothing runs twice.
            Setting("aws:autoscaling:asg", "MinSize", "1"),
            Setting("aws:autoscaling:asg", "MaxSize", "1"),
            Setting("aws:elasticbeanstalk:command", "DeploymentPolicy", "Immutable"),
            Setting("aws:autoscaling:updatepolicy:rollingupdate", "RollingUpdateEnabled", "true"),
            Setting("aws:autoscaling:updatepolicy:rollingupdate", "RollingUpdateType", "Immutable"),
        ]
        self.scheduler = self._environment(
            "Scheduler", "scheduler", scheduler_rows, environment={**environment, "ZE_PROCESS": "scheduler"},
            secrets=secrets, tier="Worker",
        )

        self._scaling_reconciler(messaging, key=key)

        # Migrations and database roles: the only holder of the admin and DMS logins.
        release_env = ("DJANGO_", "DB_", "DATABASE_", "GDAL_", "GEOS_", "PROJ_", "AWS_")
        self.release = Release(
            self,
            "Release",
            cfg=cfg,
            network=network,
            database=database,
            key=key,
            environment={k: v for k, v in environment.items() if k.startswith(release_env)},
            secrets={k: secrets[k] for k in ("DJANGO_SECRET_KEY", "DB_USER", "DB_PASSWORD")},
            django_secret=self.django_secret,
            # Operators' commands run as the app does: its login, queues and topic.
            manage_environment=environment,
            manage_secrets=secrets,
            manage_readable=app_secrets,
            manage_statements=[
                iam.PolicyStatement(actions=SQS_PRODUCE, resources=[q.queue_arn for q in queues.values()]),
                iam.PolicyStatement(actions=["sns:Publish"], resources=[messaging.notifications_topic.topic_arn]),
                iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[key.key_arn]),
            ],
        )

    # --- helpers --------------------------------------------------------------------
    def _instance_role(
        self,
        name: str,
        *,
        produce: list,
        consume: list,
        secrets: list[sm.ISecret],
        key: kms.IKey,
        daemon_queue: Messaging | None = None,
    ) -> iam.Role:
        cfg = self.cfg
        role = iam.Role(
            self,
            f"{name}InstanceRole",
            role_name=f"{cfg.prefix}-eb-{name.lower()}",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
        )
        for statement in self._instance_platform_statements():
            role.add_to_policy(statement)
        if produce:
            role.add_to_policy(iam.PolicyStatement(actions=SQS_PRODUCE, resources=[q.queue_arn for q in produce]))
        if consume:
            role.add_to_policy(iam.PolicyStatement(actions=SQS_CONSUME, resources=[q.queue_arn for q in consume]))
        if daemon_queue is not None:
            # sqsd, the worker-tier daemon: polls its (empty) queue and reports metrics.
            role.add_to_policy(
                iam.PolicyStatement(actions=SQS_CONSUME, resources=[daemon_queue.eb_daemon_queue.queue_arn])
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["cloudwatch:PutMetricData"], resources=["*"],
                    conditions={"StringEquals": {"cloudwatch:namespace": "ElasticBeanstalk/SQSD"}},
                )
            )
        for secret in secrets:
            secret.grant_read(role)
        # SQS and SNS payloads are encrypted with the stage key.
        role.add_to_policy(
            iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[key.key_arn])
        )
        profile = iam.CfnInstanceProfile(
            self, f"{name}InstanceProfile", roles=[role.role_name], instance_profile_name=role.role_name,
        )
        self.profiles[name] = profile
        return role

    def _instance_platform_statements(self) -> list[iam.PolicyStatement]:
        """What an Elastic Beanstalk instance itself needs, in place of the managed
        AWSElasticBeanstalkWebTier policy, whose `s3:PutObject` on every `elasticbeanstalk-*`
        bucket would let an instance rewrite the bundle the release task runs with the
        database admin login. From that policy, kept and scoped to this application: read
        its versions and EB's per-environment copies in the storage bucket, write only the
        logs EB asks instances to publish there, stream logs to its own log groups, report
        enhanced health. Left out: X-Ray (not used) and the worker tier's DynamoDB leader
        table (only for cron.yaml; beat schedules here).
        https://docs.aws.amazon.com/elasticbeanstalk/latest/dg/iam-instanceprofile.html
        https://docs.aws.amazon.com/elasticbeanstalk/latest/dg/vpc-vpce.policy.html"""
        cfg = self.cfg
        stack = Stack.of(self)
        storage = f"arn:{stack.partition}:s3:::elasticbeanstalk-{stack.region}-{stack.account}"
        return [
            iam.PolicyStatement(
                sid="ReadThisApplicationsVersions",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[
                    f"{storage}/{cfg.prefix}/*",
                    f"{storage}/resources/environments/*",
                    # EB's own buckets: platform assets and, on first launch, the sample app.
                    f"arn:{stack.partition}:s3:::elasticbeanstalk-platform-assets-{stack.region}/*",
                    f"arn:{stack.partition}:s3:::elasticbeanstalk-env-resources-{stack.region}/*",
                    f"arn:{stack.partition}:s3:::elasticbeanstalk-samples-{stack.region}/*",
                ],
            ),
            iam.PolicyStatement(
                sid="ListThisApplicationsVersions",
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[storage],
            ),
            iam.PolicyStatement(
                sid="PublishLogsOnRequest",
                actions=["s3:PutObject"],
                resources=[f"{storage}/resources/environments/logs/*"],
            ),
            iam.PolicyStatement(
                sid="StreamLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"/aws/elasticbeanstalk/{cfg.prefix}*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            ),
            iam.PolicyStatement(sid="FindLogGroups", actions=["logs:DescribeLogGroups"], resources=["*"]),
            iam.PolicyStatement(
                sid="ReportEnhancedHealth",
                actions=["elasticbeanstalk:PutInstanceStatistics"],
                resources=[
                    stack.format_arn(service="elasticbeanstalk", resource="application", resource_name=cfg.prefix),
                    stack.format_arn(
                        service="elasticbeanstalk", resource="environment", resource_name=f"{cfg.prefix}/*"
                    ),
                ],
            ),
        ]

    def _common_rows(self, *, profile: str, sg: ec2.ISecurityGroup, subnets: list[str]) -> list[Setting]:
        cfg = self.cfg
        return [
            Setting("aws:ec2:vpc", "VPCId", self.vpc_id),
            Setting("aws:ec2:vpc", "Subnets", Fn.join(",", subnets)),
            Setting("aws:ec2:vpc", "AssociatePublicIpAddress", "false"),
            Setting("aws:autoscaling:launchconfiguration", "IamInstanceProfile", self.profiles[profile].ref),
            Setting("aws:autoscaling:launchconfiguration", "SecurityGroups", sg.security_group_id),
            # Only our security group: EB would otherwise add one of its own beside it.
            Setting("aws:autoscaling:launchconfiguration", "DisableDefaultEC2SecurityGroup", "true"),
            Setting("aws:autoscaling:launchconfiguration", "DisableIMDSv1", "true"),
            Setting("aws:autoscaling:launchconfiguration", "RootVolumeType", "gp3"),
            Setting("aws:autoscaling:launchconfiguration", "RootVolumeSize", "20"),
            Setting("aws:elasticbeanstalk:environment", "ServiceRole", self.service_role.role_arn),
            Setting("aws:elasticbeanstalk:healthreporting:system", "SystemType", "enhanced"),
            Setting("aws:elasticbeanstalk:managedactions", "ManagedActionsEnabled", "true"),
            Setting("aws:elasticbeanstalk:managedactions", "PreferredStartTime", "Sun:06:00"),
            Setting("aws:elasticbeanstalk:managedactions:platformupdate", "UpdateLevel", "minor"),
            Setting("aws:elasticbeanstalk:cloudwatch:logs", "StreamLogs", "true"),
            Setting("aws:elasticbeanstalk:cloudwatch:logs", "RetentionInDays", str(cfg.log_retention_days)),
            Setting("aws:elasticbeanstalk:cloudwatch:logs", "DeleteOnTerminate", "false"),
            Setting("aws:elasticbeanstalk:cloudwatch:logs:health", "HealthStreamingEnabled", "true"),
            # EB always creates a pair of simple-scaling alarms (default: NetworkOut, scale
            # in below 2 MB), which would fight the target-tracking policies. They stay, but
            # can never fire: average CPU is never above 100 % nor below 0 %.
            # https://docs.aws.amazon.com/elasticbeanstalk/latest/dg/command-options-general.html#command-options-general-autoscalingtrigger
            Setting("aws:autoscaling:trigger", "MeasureName", "CPUUtilization"),
            Setting("aws:autoscaling:trigger", "Statistic", "Average"),
            Setting("aws:autoscaling:trigger", "Unit", "Percent"),
            Setting("aws:autoscaling:trigger", "UpperThreshold", "100"),
            Setting("aws:autoscaling:trigger", "LowerThreshold", "0"),
        ]

    @staticmethod
    def _rolling_rows(*, min_instances: int, max_instances: int) -> list[Setting]:
        """Application deploys in batches of one with an extra batch (capacity never
        drops); configuration changes that replace instances roll one at a time, each
        waiting for health, keeping `min_instances` in service."""
        assert min_instances < max_instances, "a rolling update needs room for one more instance"
        return [
            Setting("aws:elasticbeanstalk:command", "DeploymentPolicy", "RollingWithAdditionalBatch"),
            Setting("aws:elasticbeanstalk:command", "BatchSizeType", "Fixed"),
            Setting("aws:elasticbeanstalk:command", "BatchSize", "1"),
            Setting("aws:autoscaling:updatepolicy:rollingupdate", "RollingUpdateEnabled", "true"),
            Setting("aws:autoscaling:updatepolicy:rollingupdate", "RollingUpdateType", "Health"),
            Setting("aws:autoscaling:updatepolicy:rollingupdate", "MaxBatchSize", "1"),
            Setting("aws:autoscaling:updatepolicy:rollingupdate", "MinInstancesInService", str(min_instances)),
        ]

    @staticmethod
    def _daemon_rows(messaging: Messaging) -> list[Setting]:
        return [
            Setting("aws:elasticbeanstalk:environment", "EnvironmentType", "LoadBalanced"),
            Setting("aws:elasticbeanstalk:sqsd", "WorkerQueueURL", messaging.eb_daemon_queue.queue_url),
            Setting("aws:elasticbeanstalk:sqsd", "HttpPath", "/healthz"),
            Setting(
                "aws:elasticbeanstalk:healthreporting:system", "ConfigDocument",
                json.dumps(DAEMON_HEALTH_CONFIG, sort_keys=True),
            ),
        ]

    def _environment(
        self, id: str, role_name: str, rows: list[Setting], *, environment: dict[str, str], secrets: dict[str, str], tier: str
    ) -> eb.CfnEnvironment:
        cfg = self.cfg
        rows = [
            *rows,
            *(Setting("aws:elasticbeanstalk:application:environment", k, v) for k, v in sorted(environment.items())),
            *(Setting("aws:elasticbeanstalk:application:environmentsecrets", k, v) for k, v in sorted(secrets.items())),
        ]
        env = eb.CfnEnvironment(
            self,
            f"{id}Environment",
            application_name=self.application.application_name or cfg.prefix,
            environment_name=f"{cfg.prefix}-{role_name}",
            platform_arn=self.platform_arn,
            tier=eb.CfnEnvironment.TierProperty(
                name=tier, type="Standard" if tier == "WebServer" else "SQS/HTTP"
            ),
            # No version label: the stack creates the environments (with the platform's
            # sample app); `deploy/eb/release.sh` deploys application versions, and a stack
            # update never rolls the running version back.
            option_settings=_settings(rows),
        )
        env.node.add_dependency(self.application)
        # EB's own log groups, made here first so that they are on the stack's logs key (the
        # LogGroupsOnKey aspect) with the stage's retention; EB streams into existing groups.
        for path in EB_LOG_GROUP_PATHS:
            group = logs.LogGroup(
                self,
                f"{id}Logs{''.join(part.title() for part in path.replace('.', '/').split('/') if part)}",
                log_group_name=f"/aws/elasticbeanstalk/{cfg.prefix}-{role_name}{path}",
                retention=retention(cfg.log_retention_days),
                removal_policy=RemovalPolicy.DESTROY if cfg.name == "dev" else RemovalPolicy.RETAIN,
            )
            env.node.add_dependency(group)
        return env

    def _platform_arn_lookup(self) -> str:
        """The recommended platform version of the configured branch, read at deploy time.

        Pinning a patch version (a solution stack name) breaks the first deploy after EB
        retires it; a branch name stays valid for the branch's life. Managed platform
        updates keep the running environments current between deploys."""
        cfg = self.cfg
        if cfg.platform_branch not in PLATFORM_BRANCHES:
            raise ValueError(
                f"unknown Elastic Beanstalk platform branch {cfg.platform_branch!r}; "
                f"known: {sorted(PLATFORM_BRANCHES)} (deploy/ze_infra/config.py)"
            )
        lookup = cr.AwsCustomResource(
            self,
            "PlatformLookup",
            on_update=cr.AwsSdkCall(
                service="ElasticBeanstalk",
                action="listPlatformVersions",
                parameters={
                    "Filters": [
                        {"Type": "PlatformBranchName", "Operator": "=", "Values": [cfg.platform_branch]},
                        {"Type": "PlatformLifecycleState", "Operator": "=", "Values": ["recommended"]},
                    ]
                },
                # Keyed on the branch: a new branch name resolves again.
                physical_resource_id=cr.PhysicalResourceId.of(f"{cfg.prefix}-platform-{cfg.platform_branch}"),
                output_paths=["PlatformSummaryList.0.PlatformArn"],
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["elasticbeanstalk:ListPlatformVersions"], resources=["*"])]
            ),
            install_latest_aws_sdk=False,
        )
        return lookup.get_response_field("PlatformSummaryList.0.PlatformArn")

    def _scaling_reconciler(self, messaging: Messaging, *, key: kms.IKey) -> None:
        """Target tracking for web (requests per target) and workers (pings backlog per
        instance), and step scaling for workers on the age of the oldest pings batch, kept
        on whatever Auto Scaling group EB gives each environment. The targets derive from
        the measured capacity (capacity.py).

        Why a reconciler and not a policy in this template: EB owns the groups and load
        balancers and replaces them on a rebuild, so a policy bound to one group's name
        (found once by a custom resource with a fixed physical id) disappears with it,
        and EB's own triggers know only EC2/ELB metrics, not SQS. Nor do the policies
        live in `.ebextensions` `Resources:`: the workers and the scheduler deploy the same
        worker bundle (deploy/eb/bundle.sh), so a worker policy there would land in the
        scheduler's stack too (scaling beat, which must stay one instance, on the pings
        queue); and the targets come from this stack's measured capacity. The function (scaling/index.py)
        is keyed on the environment names, runs on EB's events for them and every 5
        minutes, and re-applies the policies idempotently; monitoring.py alarms when it
        fails."""
        cfg = self.cfg
        stack = Stack.of(self)
        pings = messaging.queues["pings"]
        web_env, worker_env = f"{cfg.prefix}-web", f"{cfg.prefix}-worker"
        capacity = capacity_measured()
        age = cfg.worker_queue_age_scale_out_seconds

        def stat(id_: str, namespace: str, name: str, dims: dict[str, str], statistic: str) -> dict:
            return {
                "Id": id_,
                "ReturnData": False,
                "MetricStat": {
                    "Metric": {
                        "Namespace": namespace,
                        "MetricName": name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                    },
                    "Stat": statistic,
                },
            }

        self.scaling_spec = [
            {
                "environment": web_env,
                "policies": [
                    {
                        "name": "requests-per-target",
                        "target_tracking": {
                            "TargetValue": float(web_requests_per_target_per_minute(capacity)),
                            "PredefinedMetricSpecification": {
                                "PredefinedMetricType": "ALBRequestCountPerTarget",
                                "ResourceLabel": "${ResourceLabel}",
                            },
                        },
                    }
                ],
            },
            {
                "environment": worker_env,
                "policies": [
                    {
                        "name": "pings-backlog-per-instance",
                        "target_tracking": {
                            "TargetValue": float(
                                worker_backlog_per_instance(
                                    capacity, acceptable_latency_s=cfg.worker_acceptable_latency_seconds
                                )
                            ),
                            "CustomizedMetricSpecification": {
                                "Metrics": [
                                    stat("visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible",
                                         {"QueueName": pings.queue_name}, "Sum"),
                                    # Received by a worker, not yet deleted: work the group holds.
                                    stat("in_flight", "AWS/SQS", "ApproximateNumberOfMessagesNotVisible",
                                         {"QueueName": pings.queue_name}, "Sum"),
                                    stat("instances", "AWS/AutoScaling", "GroupInServiceInstances",
                                         {"AutoScalingGroupName": "${AutoScalingGroupName}"}, "Average"),
                                    {
                                        "Id": "backlog_per_instance",
                                        "Label": "Pings batches waiting or in flight per worker instance",
                                        "Expression": "(visible + in_flight) / IF(instances > 0, instances, 1)",
                                        "ReturnData": True,
                                    },
                                ]
                            },
                        },
                    },
                    {
                        # Step, not target tracking: the age says how late the oldest batch
                        # is, not how much capacity is missing; steps add a share of the group.
                        "name": "pings-oldest-age",
                        "step_scaling": {
                            "AdjustmentType": "PercentChangeInCapacity",
                            "MinAdjustmentMagnitude": 1,
                            "MetricAggregationType": "Maximum",
                            "EstimatedInstanceWarmup": 180,
                            "StepAdjustments": [
                                {"MetricIntervalLowerBound": 0.0, "MetricIntervalUpperBound": float(age),
                                 "ScalingAdjustment": 10},
                                {"MetricIntervalLowerBound": float(age), "MetricIntervalUpperBound": float(3 * age),
                                 "ScalingAdjustment": 25},
                                {"MetricIntervalLowerBound": float(3 * age), "ScalingAdjustment": 50},
                            ],
                        },
                        "alarm": {
                            "Namespace": "AWS/SQS",
                            "MetricName": "ApproximateAgeOfOldestMessage",
                            "Dimensions": [{"Name": "QueueName", "Value": pings.queue_name}],
                            "Statistic": "Maximum",
                            "Period": 60,
                            "EvaluationPeriods": 2,
                            "DatapointsToAlarm": 2,
                            "Threshold": float(age),
                            "ComparisonOperator": "GreaterThanThreshold",
                            "TreatMissingData": "notBreaching",
                        },
                    },
                ],
            },
        ]

        self.scaling_dead_letters = dead_letters = sqs.Queue(
            self,
            "ScalingReconcilerDeadLetters",
            queue_name=f"{cfg.prefix}-scaling-reconciler-dlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.scaling_function = lambda_.Function(
            self,
            "ScalingReconciler",
            function_name=f"{cfg.prefix}-scaling-reconciler",
            description="Keeps the scaling policies on the Auto Scaling groups of the web and worker environments",
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(Path(__file__).parent / "scaling")),
            timeout=Duration.seconds(60),
            memory_size=128,
            # to_json_string resolves the queue name (a token) inside the JSON.
            environment={"SCALING": stack.to_json_string(self.scaling_spec)},
            environment_encryption=key,
            # One run at a time: two would only put the same policies twice.
            reserved_concurrent_executions=1,
            dead_letter_queue=dead_letters,
            log_group=logs.LogGroup(
                self, "ScalingReconcilerLogs", retention=retention(cfg.log_retention_days), encryption_key=key,
                removal_policy=RemovalPolicy.DESTROY,
            ),
        )
        envs = [web_env, worker_env]
        role = self.scaling_function.role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["elasticbeanstalk:DescribeEnvironmentResources"],
                resources=[
                    stack.format_arn(service="elasticbeanstalk", resource="environment", resource_name=f"{cfg.prefix}/{e}")
                    for e in envs
                ],
            )
        )
        for statement in eb_resources_read_statements(
            stack=stack, describes=[*EB_RESOURCE_DESCRIBES, "elasticloadbalancing:DescribeTargetGroups"]
        ):
            role.add_to_principal_policy(statement)
        # The step policy's alarm, one per environment, re-pointed at the current group's policy.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricAlarm"],
                resources=[stack.format_arn(service="cloudwatch", resource="alarm",
                                            resource_name=f"{worker_env}-pings-oldest-age",
                                            arn_format=ArnFormat.COLON_RESOURCE_NAME)],
            )
        )
        # Reads only; DescribePolicies takes no resource.
        role.add_to_principal_policy(iam.PolicyStatement(actions=["autoscaling:DescribePolicies"], resources=["*"]))
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["autoscaling:PutScalingPolicy", "autoscaling:EnableMetricsCollection"],
                resources=["*"],
                # Only the groups of these two environments, whatever their names.
                conditions={"StringEquals": {"autoscaling:ResourceTag/elasticbeanstalk:environment-name": envs}},
            )
        )
        # Target tracking creates its CloudWatch alarms through this service-linked role.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[stack.format_arn(
                    service="iam", region="", resource="role",
                    resource_name="aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
                )],
            )
        )
        target = targets.LambdaFunction(self.scaling_function, retry_attempts=2, dead_letter_queue=dead_letters)
        events.Rule(
            self,
            "ScalingOnEnvironmentChange",
            description="Re-apply the scaling policies when EB changes the web or worker environment",
            event_pattern=events.EventPattern(
                source=["aws.elasticbeanstalk"],
                detail={"EnvironmentName": envs},
            ),
            targets=[target],
        )
        events.Rule(
            self,
            "ScalingEveryFiveMinutes",
            description="Re-apply the scaling policies on the current EB Auto Scaling groups",
            schedule=events.Schedule.rate(Duration.minutes(5)),
            targets=[target],
        )
