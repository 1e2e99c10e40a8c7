"""The release task: database bootstrap and migrations, away from the web instances.

The Aurora admin login (rds_superuser) and the DMS login are needed once per release, to
create roles, the PostGIS extension and DMS's DDL capture. The instances that face the
internet must not be able to read them, so this CodeBuild project runs that step and its
role is the only one of the app's that can read those two secrets.

`deploy/eb/release.sh` starts it on the new source bundle (the zip it uploads for Elastic
Beanstalk) and waits for it before any environment receives that version; the project
runs `deploy/eb/release-database.sh` from the bundle, in the private subnets, with a
security group that reaches only Aurora and HTTPS.

Why CodeBuild: it runs the bundle's own code on demand in the VPC with a role of its own,
with no image to build and host (an ECS task needs one), no 15-minute cap (Lambda), and
no standing instance; an EB leader-only hook would run on a web instance, whose role
would then have to hold (or be able to assume a role holding) the admin secret.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from .common import retention
from .config import StageConfig
from .data import Database
from .network import Network


class Release(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cfg: StageConfig,
        network: Network,
        database: Database,
        key: kms.IKey,
        environment: dict[str, str],
        secrets: dict[str, str],
        django_secret: sm.ISecret,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        assert database.admin_secret is not None
        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/ze-tracking/{cfg.prefix}/release",
            retention=retention(cfg.log_retention_days),
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY if cfg.name == "dev" else RemovalPolicy.RETAIN,
        )
        variables = {
            **{k: codebuild.BuildEnvironmentVariable(value=v) for k, v in environment.items()},
            # Read by db_bootstrap.py with boto3; nothing else holds these two ARNs.
            "DB_ADMIN_SECRET_ARN": codebuild.BuildEnvironmentVariable(value=database.admin_secret.secret_arn),
            "DB_DMS_SECRET_ARN": codebuild.BuildEnvironmentVariable(value=database.dms_secret.secret_arn),
        }
        self.project = codebuild.Project(
            self,
            "Project",
            project_name=f"{cfg.prefix}-release",
            description="Release step: database roles (admin login), migrations (ze_app), DMS grants",
            vpc=network.vpc,
            subnet_selection=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[network.release_sg],
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.AMAZON_LINUX_2_5,
                compute_type=codebuild.ComputeType.SMALL,
                privileged=False,
            ),
            environment_variables=variables,
            # No source of its own: release.sh passes the bundle (S3) on every start.
            build_spec=codebuild.BuildSpec.from_object(
                {
                    "version": "0.2",
                    # Here rather than as project variables: CDK cannot parse an "<arn>:<json key>"
                    # reference there, and the role's reads are granted explicitly below.
                    "env": {"secrets-manager": secrets},
                    "phases": {
                        "install": {"runtime-versions": {"python": "3.11"}},
                        "build": {"commands": ["bash deploy/eb/release-database.sh"]},
                    },
                }
            ),
            encryption_key=key,
            # release.sh waits as long; a migration that takes longer needs a look, not a retry.
            timeout=Duration.minutes(30),
            logging=codebuild.LoggingOptions(cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=log_group)),
        )
        # CodeBuild's access to the VPC, which CDK writes with "*" for every action: the
        # describes need "*", but the network interfaces it creates and deletes are limited
        # to this account's, in the app subnets, with the release security group.
        vpc_access = self.project.node.find_child("PolicyDocument").node.default_child
        assert isinstance(vpc_access, iam.CfnPolicy)
        private = network.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids
        vpc_access.add_property_override(
            "PolicyDocument.Statement",
            [
                {
                    "Effect": "Allow",
                    "Action": [
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSubnets",
                        "ec2:DescribeSecurityGroups",
                        "ec2:DescribeDhcpOptions",
                        "ec2:DescribeVpcs",
                    ],
                    "Resource": "*",
                },
                {
                    "Effect": "Allow",
                    "Action": ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"],
                    "Resource": [
                        stack.format_arn(service="ec2", resource="network-interface", resource_name="*"),
                        *(stack.format_arn(service="ec2", resource="subnet", resource_name=s) for s in private),
                        stack.format_arn(
                            service="ec2", resource="security-group", resource_name=network.release_sg.security_group_id
                        ),
                    ],
                },
            ],
        )
        role = self.project.role
        assert role is not None
        # Django's settings need a secret key even to migrate.
        for secret in (database.admin_secret, database.dms_secret, database.app_secret, django_secret):
            secret.grant_read(role)
        # The source bundles release.sh uploads to Elastic Beanstalk's storage bucket.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[f"arn:{stack.partition}:s3:::elasticbeanstalk-{stack.region}-{stack.account}/{cfg.prefix}/*"],
            )
        )
