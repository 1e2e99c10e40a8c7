"""AWS WAF in front of the public load balancer.

Elastic Beanstalk creates the ALB and may replace it, so the web ACL is associated with
it from EB's own stack (.ebextensions/40_web_load_balancer.config, which reads the ACL's
ARN from the web environment's custom option `WebAclArn`, set in compute.py).
Rules, first match wins:

0. a rate limit per client address (the ALB hands WAF the real peer address, so a
   forged X-Forwarded-For cannot dodge it);
1. optional: the staff paths (STAFF_PATHS) only from the stage's `staff_allowed_cidrs`;
2. AWS's IP reputation list (known botnets, scanners);
3. known bad inputs (Log4Shell, Spring4Shell and the like);
4. the common rule set (OWASP-style probes), with the 8 KB body limit only counted:
   a courier app's ping batch is a JSON body of up to 1 MiB, which the app limits itself.

Requests are logged to CloudWatch Logs without their Authorization, Cookie and Referer
headers and without their path (tracking links carry their secret code in it).
"""

from __future__ import annotations

import ipaddress

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from .common import retention
from .config import StageConfig

MANAGED_RULE_GROUPS: tuple[tuple[str, list[str]], ...] = (
    ("AWSManagedRulesAmazonIpReputationList", []),
    ("AWSManagedRulesKnownBadInputsRuleSet", []),
    ("AWSManagedRulesCommonRuleSet", ["SizeRestrictions_BODY"]),
)

# What only staff use: the admin, the backoffice's login and map, its socket, the couriers
# API. The token login is shared with couriers and stays open (staff need their code there).
STAFF_PATHS: tuple[str, ...] = ("/admin/", "/accounts/", "/backoffice/", "/ws/fleet/", "/api/v1/couriers")


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


class Waf(Construct):
    def __init__(self, scope: Construct, id: str, *, cfg: StageConfig, key: kms.IKey) -> None:
        super().__init__(scope, id)
        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name="RatePerClientAddress",
                priority=0,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        aggregate_key_type="IP",
                        limit=cfg.waf_requests_per_address_per_5_minutes,
                        evaluation_window_sec=300,
                    )
                ),
                visibility_config=_visibility("RatePerClientAddress"),
            )
        ]
        if cfg.staff_allowed_cidrs:
            rules.append(self._staff_allow_list(cfg))
        for priority, (group, counted) in enumerate(MANAGED_RULE_GROUPS, start=2):
            rules.append(
                wafv2.CfnWebACL.RuleProperty(
                    name=group,
                    priority=priority,
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS",
                            name=group,
                            rule_action_overrides=[
                                wafv2.CfnWebACL.RuleActionOverrideProperty(
                                    name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                                )
                                for rule in counted
                            ]
                            or None,
                        )
                    ),
                    visibility_config=_visibility(group),
                )
            )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=f"{cfg.prefix}-web",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{cfg.prefix}-web"),
            rules=rules,
        )

        # WAF logs only to groups named aws-waf-logs-*.
        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"aws-waf-logs-{cfg.prefix}",
            retention=retention(cfg.log_retention_days),
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY if cfg.name == "dev" else RemovalPolicy.RETAIN,
        )
        wafv2.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[log_group.log_group_arn],
            # Tokens and session cookies stay out of the logs, and so do tracking codes: they
            # are in the path (/t/<code>, /api/v1/track/<code>, /ws/track/<code>/) and in the
            # Referer of the tracking page's own requests. WAF redacts the path of every
            # request (it has no per-route redaction); the app's and nginx's logs name the route.
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": "authorization"}),
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": "cookie"}),
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": "referer"}),
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(uri_path={}),
            ],
        )

    def _staff_allow_list(self, cfg: StageConfig) -> wafv2.CfnWebACL.RuleProperty:
        """Block the staff paths unless the client address is listed: one IP set per address
        version (an IP set holds one), matched on the URL-decoded path, as Django routes it."""
        by_version: dict[str, list[str]] = {"IPV4": [], "IPV6": []}
        for cidr in cfg.staff_allowed_cidrs:
            network = ipaddress.ip_network(cidr.strip())  # a malformed CIDR stops synthesis
            by_version[f"IPV{network.version}"].append(str(network))
        listed = [
            wafv2.CfnWebACL.StatementProperty(
                ip_set_reference_statement=wafv2.CfnWebACL.IPSetReferenceStatementProperty(
                    arn=wafv2.CfnIPSet(
                        self,
                        f"StaffAddresses{version.title()}",
                        name=f"{cfg.prefix}-staff-{version.lower()}",
                        scope="REGIONAL",
                        ip_address_version=version,
                        addresses=addresses,
                    ).attr_arn
                )
            )
            for version, addresses in by_version.items()
            if addresses
        ]
        paths = [
            wafv2.CfnWebACL.StatementProperty(
                byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                    field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                    positional_constraint="STARTS_WITH",
                    search_string=path,
                    text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="URL_DECODE")],
                )
            )
            for path in STAFF_PATHS
        ]
        any_listed = (
            listed[0]
            if len(listed) == 1
            else wafv2.CfnWebACL.StatementProperty(or_statement=wafv2.CfnWebACL.OrStatementProperty(statements=listed))
        )
        return wafv2.CfnWebACL.RuleProperty(
            name="StaffPathsFromAllowedAddressesOnly",
            priority=1,
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                and_statement=wafv2.CfnWebACL.AndStatementProperty(
                    statements=[
                        wafv2.CfnWebACL.StatementProperty(
                            or_statement=wafv2.CfnWebACL.OrStatementProperty(statements=paths)
                        ),
                        wafv2.CfnWebACL.StatementProperty(
                            not_statement=wafv2.CfnWebACL.NotStatementProperty(statement=any_listed)
                        ),
                    ]
                )
            ),
            visibility_config=_visibility("StaffPathsFromAllowedAddressesOnly"),
        )
