"""checkov checks skipped, each with its reason, written into the template metadata
(`Metadata.checkov.skip`) of the resources they concern. The only place a check is
skipped: `make test-deploy` runs checkov with no skip flags."""

from __future__ import annotations

import jsii
from aws_cdk import CfnResource, IAspect
from constructs import IConstruct

# resource type -> [(check id, reason)]
SKIPS: dict[str, list[tuple[str, str]]] = {
    # CDK's deploy-time custom-resource handlers (restrict the default security group, look
    # up the platform version) and the scaling reconciler (compute.py), which has a
    # reserved concurrency of 1 and a DLQ of its own but, like the others, calls only AWS
    # APIs (no VPC).
    "AWS::Lambda::Function": [
        ("CKV_AWS_115", "deploy-time custom-resource handler, runs once per stack update: no concurrency to cap"),
        ("CKV_AWS_116", "deploy-time custom-resource handler, invoked synchronously by CloudFormation: no async DLQ"),
        ("CKV_AWS_117", "calls only AWS APIs (EB, Auto Scaling, ELB): no VPC resource to reach"),
    ],
}

# construct id -> [(check id, reason)], for one resource rather than a whole type
RESOURCE_SKIPS: dict[str, list[tuple[str, str]]] = {
    "DmsStaging": [
        ("CKV_AWS_18", "DMS staging files live minutes and expire in 7 days; API access is in CloudTrail"),
    ],
    "ManageExports": [
        ("CKV_AWS_18", "operators' exports live at most 7 days; who wrote and read them is in CloudTrail"),
    ],
}


@jsii.implements(IAspect)
class CheckovSkips:
    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource):
            return
        skips = [*SKIPS.get(node.cfn_resource_type, []), *RESOURCE_SKIPS.get(node.node.scope.node.id, [])]
        if skips:
            node.add_metadata("checkov", {"skip": [{"id": i, "comment": c} for i, c in skips]})
