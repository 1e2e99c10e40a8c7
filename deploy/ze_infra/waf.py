"""AWS WAF in front of the public load balancer.

Elastic Beanstalk creates the ALB and may replace it, so the web ACL is associated with
it from EB's own stack (.ebextensions/40_web_load_balancer.config, which reads the ACL's
ARN from the web environment's custom option `WebAclArn`, set in compute.py).
Rules, first match wins:

0. a rate limit per client address (the ALB hands WAF the real peer address, so a
   forged X-Forwarded-For cannot dodge it);
1. AWS's IP reputation list (known botnets, scanners);
2. known bad inputs (Log4Shell, Spring4Shell and the like);
3. the common rule set (OWASP-style probes), with the 8 KB body limit only counted:
   a courier app's ping batch is a JSON body of up to 1 MiB, which the app limits itself.

Requests are logged to CloudWatch Logs without their Authorization and Cookie headers.
"""

from __future__ import annotations

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
        for priority, (group, counted) in enumerate(MANAGED_RULE_GROUPS, start=1):
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
            # Tokens and session cookies stay out of the logs.
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": "authorization"}),
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": "cookie"}),
            ],
        )
