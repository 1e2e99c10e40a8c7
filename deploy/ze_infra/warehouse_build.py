"""The warehouse build: dbt (warehouse/) against Redshift, after each release and daily.

A CodeBuild project in the private subnets runs `scripts/warehouse.sh dbt build` from the
released bundle: source freshness, then every model and every dbt test. Its source is
`<app>/warehouse/current.zip` in Elastic Beanstalk's bucket, which `deploy/eb/release.sh`
writes after a release (then it starts this build and waits for it); EventBridge Scheduler
starts the same build every night, so the incremental marts take in each day's late pings.
A build that fails, times out or is stopped is an event routed to the alarm topic
(deploy/ze_infra/monitoring.py).

It reaches Redshift only (5439) and HTTPS (package installs, AWS APIs); dbt signs in as
`ze_dbt` (SELECT on the replicated tables, owner of its own schema; never the admin), read
from Secrets Manager by CodeBuild itself.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from . import analytics_tables as tables
from .analytics import Analytics
from .common import codebuild_vpc_access_scoped, retention, service_for_this_account
from .config import StageConfig
from .network import Network

# 04:00 UTC, 01:00 in São Paulo: after the privacy rule (03:30) and the day's last orders.
NIGHTLY = "cron(0 4 * * ? *)"


def source_key(cfg: StageConfig) -> str:
    """Where release.sh puts the released bundle for this build."""
    return f"{cfg.prefix}/warehouse/current.zip"


class WarehouseBuild(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cfg: StageConfig,
        network: Network,
        analytics: Analytics,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description="Warehouse build (CodeBuild, dbt): to Redshift and HTTPS",
            allow_all_outbound=False,
            security_group_name=f"{cfg.prefix}-warehouse-build",
        )
        self.security_group.add_egress_rule(network.redshift_sg, ec2.Port.tcp(5439), "to Redshift")
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs and package installs")
        network.redshift_sg.add_ingress_rule(self.security_group, ec2.Port.tcp(5439), "from the warehouse build")

        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/ze-tracking/{cfg.prefix}/warehouse-build",
            retention=retention(cfg.log_retention_days),
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY if cfg.name == "dev" else RemovalPolicy.RETAIN,
        )
        bundles = s3.Bucket.from_bucket_name(self, "Bundles", f"elasticbeanstalk-{stack.region}-{stack.account}")
        secret = analytics.dbt_secret.secret_arn
        self.project = codebuild.Project(
            self,
            "Project",
            project_name=f"{cfg.prefix}-warehouse-build",
            role=iam.Role(self, "ProjectRole", assumed_by=service_for_this_account(self, "codebuild.amazonaws.com")),
            description="dbt build of the warehouse's models and tests against Redshift (warehouse/)",
            source=codebuild.Source.s3(bucket=bundles, path=source_key(cfg)),
            vpc=network.vpc,
            subnet_selection=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[self.security_group],
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.AMAZON_LINUX_2_5,
                compute_type=codebuild.ComputeType.SMALL,
                privileged=False,
            ),
            environment_variables={
                "WAREHOUSE_TARGET": codebuild.BuildEnvironmentVariable(value="redshift"),
                "WAREHOUSE_HOST": codebuild.BuildEnvironmentVariable(
                    value=analytics.workgroup.attr_workgroup_endpoint_address
                ),
                "WAREHOUSE_PORT": codebuild.BuildEnvironmentVariable(value="5439"),
                "WAREHOUSE_DBNAME": codebuild.BuildEnvironmentVariable(value=cfg.redshift_database),
                "WAREHOUSE_SCHEMA": codebuild.BuildEnvironmentVariable(value=tables.WAREHOUSE_BUILD_SCHEMA),
            },
            build_spec=codebuild.BuildSpec.from_object(
                {
                    "version": "0.2",
                    "env": {
                        "secrets-manager": {
                            "WAREHOUSE_USER": f"{secret}:username",
                            "WAREHOUSE_PASSWORD": f"{secret}:password",
                        }
                    },
                    "phases": {
                        "install": {"runtime-versions": {"python": "3.11"}},
                        "build": {
                            "commands": [
                                "bash scripts/warehouse.sh dbt source freshness",
                                "bash scripts/warehouse.sh dbt build",
                            ]
                        },
                    },
                }
            ),
            encryption_key=key,
            timeout=Duration.minutes(60),
            logging=codebuild.LoggingOptions(cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=log_group)),
        )
        codebuild_vpc_access_scoped(self.project, network=network, security_group=self.security_group)
        analytics.dbt_secret.grant_read(self.project)
        key.grant_decrypt(self.project)

        # Nightly: the incremental marts rebuild their last days.
        schedule_role = iam.Role(
            self,
            "ScheduleRole",
            role_name=f"{cfg.prefix}-warehouse-build-schedule",
            assumed_by=service_for_this_account(self, "scheduler.amazonaws.com"),
        )
        schedule_role.add_to_policy(
            iam.PolicyStatement(actions=["codebuild:StartBuild"], resources=[self.project.project_arn])
        )
        self.schedule = scheduler.CfnSchedule(
            self,
            "Nightly",
            name=f"{cfg.prefix}-warehouse-build",
            description="dbt build of the warehouse (deploy/ze_infra/warehouse_build.py)",
            schedule_expression=NIGHTLY,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            kms_key_arn=key.key_arn,
            target=scheduler.CfnSchedule.TargetProperty(
                arn="arn:aws:scheduler:::aws-sdk:codebuild:startBuild",
                role_arn=schedule_role.role_arn,
                input=stack.to_json_string({"ProjectName": self.project.project_name}),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=3, maximum_event_age_in_seconds=3600
                ),
            ),
        )
