from __future__ import annotations

import jsii
from aws_cdk import CfnDeletionPolicy, CfnResource, Duration, IAspect, RemovalPolicy, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

_RETENTION = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


def retention(days: int) -> logs.RetentionDays:
    """CloudWatch Logs retention for a number of days (one of 7, 14, 30, 90, 365)."""
    return _RETENTION[days]


def service_for_this_account(scope: IConstruct, service: str) -> iam.ServicePrincipal:
    """A service principal trusted only when it acts for this account (the confused-deputy
    condition AWS documents for the role trust policies of EventBridge Scheduler, CodeBuild
    and DMS). https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html"""
    return iam.ServicePrincipal(service, conditions={"StringEquals": {"aws:SourceAccount": Stack.of(scope).account}})


# What reading the resources Elastic Beanstalk built for an environment needs.
EB_RESOURCE_DESCRIBES = [
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeLaunchConfigurations",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplates",
    "elasticloadbalancing:DescribeLoadBalancers",
]


def eb_resources_read_statements(*, stack: Stack, describes: list[str]) -> list[iam.PolicyStatement]:
    """DescribeEnvironmentResources reads the environment's CloudFormation stack
    (awseb-<environment id>-stack) and describes what is in it: read-only describes, which
    take no resource ARN."""
    return [
        iam.PolicyStatement(
            actions=["cloudformation:DescribeStackResources", "cloudformation:DescribeStackResource"],
            resources=[stack.format_arn(service="cloudformation", resource="stack", resource_name="awseb-*")],
        ),
        iam.PolicyStatement(actions=describes, resources=["*"]),
    ]


@jsii.implements(IAspect)
class KeptExceptOnCreate:
    """Every resource kept on delete (`RemovalPolicy.RETAIN`) is kept except when its own
    create fails: a named log group or key left behind by a failed first deploy would make
    the next one fail ("already exists"). CloudFormation's RetainExceptOnCreate deletes it
    in that case only; updates and stack deletes keep it as before."""

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, CfnResource) and node.cfn_options.deletion_policy == CfnDeletionPolicy.RETAIN:
            node.apply_removal_policy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE)


def codebuild_vpc_access_scoped(project: codebuild.Project, *, network, security_group: ec2.ISecurityGroup) -> None:
    """CodeBuild's access to the VPC, which CDK writes with "*" for every action: the
    describes need "*", but the network interfaces it creates and deletes are limited to
    this account's, in the app subnets, with the project's security group."""
    stack = Stack.of(project)
    vpc_access = project.node.find_child("PolicyDocument").node.default_child
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
                        service="ec2", resource="security-group", resource_name=security_group.security_group_id
                    ),
                ],
            },
        ],
    )


@jsii.implements(IAspect)
class LogGroupsOnKey:
    """Every log group of the stack on one key (the logs key), whichever construct made it."""

    def __init__(self, key) -> None:
        self.key = key

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, logs.CfnLogGroup):
            node.kms_key_id = self.key.key_arn


def private_bucket(scope: IConstruct, id: str, *, cfg, key: kms.IKey, **extra) -> s3.Bucket:
    """A bucket for files that live a week at most (DMS's staging files, operators' exports):
    private, KMS-encrypted, TLS only, versioned, objects expired after 7 days."""
    return s3.Bucket(
        scope,
        id,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycle_rules=[
            s3.LifecycleRule(
                expiration=Duration.days(7),
                noncurrent_version_expiration=Duration.days(1),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )
        ],
        removal_policy=RemovalPolicy.DESTROY if cfg.name == "dev" else RemovalPolicy.RETAIN,
        **extra,
    )
