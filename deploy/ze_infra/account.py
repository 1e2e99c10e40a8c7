"""What an AWS account holds once, whatever stages run in it: the service roles DMS looks
up by name.

DMS finds `dms-vpc-role` (to place replication instances in a VPC) and
`dms-cloudwatch-logs-role` (task logs) under exactly these names, and an account holds one
of each, so neither stage's stack may own them: deleting or failing a stage would take them
from the other. Deploy this stack once per account before the first stage
(deploy/README.md, "First deploy"); an account where the DMS console or a baseline already
created the roles skips it.
https://docs.aws.amazon.com/dms/latest/userguide/security-iam.html#CHAP_Security.APIRole
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct


class AccountStack(Stack):
    def __init__(self, scope: Construct, id: str, **kwargs) -> None:
        super().__init__(scope, id, description="Ze tracking: account-wide roles DMS looks up by name", **kwargs)
        for logical_id, name, policy in (
            ("DmsVpcRole", "dms-vpc-role", "service-role/AmazonDMSVPCManagementRole"),
            ("DmsLogsRole", "dms-cloudwatch-logs-role", "service-role/AmazonDMSCloudWatchLogsRole"),
        ):
            iam.Role(
                self,
                logical_id,
                role_name=name,
                assumed_by=iam.ServicePrincipal("dms.amazonaws.com"),
                managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(policy)],
            )
