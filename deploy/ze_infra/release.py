"""The release task: database bootstrap and migrations, away from the web instances.

The Aurora admin login (rds_superuser) and the DMS login are needed once per release, to
create roles, the PostGIS extension and DMS's DDL capture. The instances that face the
internet must not be able to read them, so this CodeBuild project runs that step and its
role is the only one of the app's that can read those two secrets.

`deploy/eb/release.py` starts it on the new source bundle (the zip it uploads for Elastic
Beanstalk), with the bundle's sha256, and waits for it before any environment receives that
version; the project fetches the bundle, refuses it unless its sha256 matches, and runs
`deploy/eb/release-database.sh` from it, in the private subnets, with a security group that
reaches only Aurora and HTTPS.

The manage project is the operators' way to run an allow-listed management command
(`deploy/eb/manage.py`) in a stage, the same way but with the app's own login and queues,
never the admin one; `<prefix>-manage-operator` is the managed policy to give on-call.

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

from .common import codebuild_vpc_access_scoped, private_bucket, retention, service_for_this_account
from .config import StageConfig
from .data import Database
from .network import Network


def bundle_commands(script: str) -> list[str]:
    """Fetch the bundle named by the start request, check it against the sha256 noted at
    upload before anything from it runs, then run `script` from it."""
    return [
        'aws s3api get-object --bucket "$BUNDLE_BUCKET" --key "$BUNDLE_KEY" bundle.zip > /dev/null',
        'echo "$BUNDLE_SHA256  bundle.zip" | sha256sum --check --strict',
        "mkdir -p bundle && unzip -q -o bundle.zip -d bundle",
        f"cd bundle && bash {script}",
    ]


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
        manage_environment: dict[str, str],
        manage_secrets: dict[str, str],
        manage_readable: list[sm.ISecret],
        manage_statements: list[iam.PolicyStatement],
    ) -> None:
        super().__init__(scope, id)
        assert database.admin_secret is not None
        self.cfg, self.network, self.key = cfg, network, key
        stack = Stack.of(self)
        self.project, _ = self._project(
            "Project",
            name="release",
            description="Release step: database roles (admin login), migrations (ze_app), DMS grants",
            environment={
                **environment,
                # Read by db_bootstrap.py with boto3; nothing else holds these two ARNs.
                "DB_ADMIN_SECRET_ARN": database.admin_secret.secret_arn,
                "DB_DMS_SECRET_ARN": database.dms_secret.secret_arn,
            },
            secrets=secrets,
            script="deploy/eb/release-database.sh",
        )
        # Django's settings need a secret key even to migrate.
        for secret in (database.admin_secret, database.dms_secret, database.app_secret, django_secret):
            secret.grant_read(self.project.role)

        # What export_pings writes, and a new superuser's first password, for the operator
        # who ran the command to fetch: encrypted with the stage key and gone after a week.
        self.exports = private_bucket(self, "ManageExports", cfg=cfg, key=key)
        self.manage, manage_logs = self._project(
            "Manage",
            name="manage",
            description="An operator's allow-listed management command (deploy/eb/manage.py), as the app's login",
            environment={**manage_environment, "EXPORTS_BUCKET": self.exports.bucket_name},
            secrets=manage_secrets,
            script="deploy/eb/manage-job.sh",
        )
        for secret in manage_readable:
            secret.grant_read(self.manage.role)
        self.exports.grant_put(self.manage.role)
        for statement in manage_statements:
            self.manage.role.add_to_principal_policy(statement)
        # What on-call is given to run those commands: start this one project, on its own
        # buildspec, and read what it printed. Starting a build with another buildspec is
        # denied (CodeBuild's codebuild:source.buildspec key, which only tells whether one
        # was sent). https://docs.aws.amazon.com/codebuild/latest/userguide/action-context-keys.html
        self.operator_policy = iam.ManagedPolicy(
            self,
            "ManageOperator",
            managed_policy_name=f"{cfg.prefix}-manage-operator",
            description=f"Run allow-listed management commands in {cfg.prefix} (deploy/eb/manage.py)",
            statements=[
                iam.PolicyStatement(
                    actions=["codebuild:StartBuild", "codebuild:BatchGetBuilds"], resources=[self.manage.project_arn]
                ),
                iam.PolicyStatement(
                    effect=iam.Effect.DENY,
                    actions=["codebuild:StartBuild"],
                    resources=[self.manage.project_arn],
                    conditions={"Null": {"codebuild:source.buildspec": "false"}},
                ),
                iam.PolicyStatement(
                    actions=["elasticbeanstalk:DescribeEnvironments", "elasticbeanstalk:DescribeApplicationVersions"],
                    resources=[
                        stack.format_arn(
                            service="elasticbeanstalk", resource="environment", resource_name=f"{cfg.prefix}/*"
                        ),
                        stack.format_arn(
                            service="elasticbeanstalk", resource="applicationversion", resource_name=f"{cfg.prefix}/*"
                        ),
                        stack.format_arn(service="elasticbeanstalk", resource="application", resource_name=cfg.prefix),
                    ],
                ),
                iam.PolicyStatement(
                    actions=["logs:GetLogEvents", "logs:FilterLogEvents"],
                    resources=[manage_logs.log_group_arn],
                ),
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[self.exports.arn_for_objects("*")]),
                iam.PolicyStatement(
                    actions=["kms:Decrypt"],
                    resources=[key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
                ),
            ],
        )

    def _project(
        self, id: str, *, name: str, description: str, environment: dict[str, str], secrets: dict[str, str], script: str
    ) -> tuple[codebuild.Project, logs.LogGroup]:
        cfg, network, key = self.cfg, self.network, self.key
        stack = Stack.of(self)
        log_group = logs.LogGroup(
            self,
            # The release task's log group keeps the construct id it always had.
            "Logs" if name == "release" else f"{id}Logs",
            log_group_name=f"/ze-tracking/{cfg.prefix}/{name}",
            retention=retention(cfg.log_retention_days),
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY if cfg.name == "dev" else RemovalPolicy.RETAIN,
        )
        project = codebuild.Project(
            self,
            id,
            project_name=f"{cfg.prefix}-{name}",
            role=iam.Role(self, f"{id}Role", assumed_by=service_for_this_account(self, "codebuild.amazonaws.com")),
            description=description,
            vpc=network.vpc,
            subnet_selection=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[network.release_sg],
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.AMAZON_LINUX_2_5,
                compute_type=codebuild.ComputeType.SMALL,
                privileged=False,
            ),
            environment_variables={k: codebuild.BuildEnvironmentVariable(value=v) for k, v in environment.items()},
            # No source of its own: each start names the bundle and its sha256 (BUNDLE_*).
            build_spec=codebuild.BuildSpec.from_object(
                {
                    "version": "0.2",
                    # Here rather than as project variables: CDK cannot parse an "<arn>:<json key>"
                    # reference there, and the role's reads are granted explicitly.
                    "env": {"secrets-manager": secrets},
                    "phases": {
                        "install": {"runtime-versions": {"python": "3.11"}},
                        "build": {"commands": bundle_commands(script)},
                    },
                }
            ),
            encryption_key=key,
            # release.py waits as long; a migration that takes longer needs a look, not a retry.
            timeout=Duration.minutes(30),
            logging=codebuild.LoggingOptions(cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=log_group)),
        )
        codebuild_vpc_access_scoped(project, network=network, security_group=network.release_sg)
        role = project.role
        assert role is not None
        # The source bundles release.sh uploads to Elastic Beanstalk's storage bucket.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[
                    f"arn:{stack.partition}:s3:::elasticbeanstalk-{stack.region}-{stack.account}/{cfg.prefix}/*"
                ],
            )
        )
        return project, log_group
