"""AWS WAF on the public load balancer: managed rule groups and a rate limit."""

from __future__ import annotations

from conftest import resources
from ze_infra.config import STAGES


def _acl(cfn: dict) -> dict:
    (acl,) = resources(cfn, "AWS::WAFv2::WebACL").values()
    return acl["Properties"]


def test_web_acl_blocks_known_bad_traffic_with_aws_managed_rule_groups(cfn):
    acl = _acl(cfn)
    assert acl["Scope"] == "REGIONAL"
    assert acl["DefaultAction"] == {"Allow": {}}
    groups = {
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]: r
        for r in acl["Rules"]
        if "ManagedRuleGroupStatement" in r["Statement"]
    }
    assert set(groups) == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    }
    for rule in groups.values():
        assert rule["OverrideAction"] == {"None": {}}  # the groups' own block actions apply


def test_only_the_body_size_rule_is_relaxed_for_ping_batches(cfn):
    (common,) = [r for r in _acl(cfn)["Rules"] if r["Name"] == "AWSManagedRulesCommonRuleSet"]
    overrides = common["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
    assert overrides == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]


def test_rate_rule_blocks_a_client_address_first(cfn, stage):
    (rate,) = [r for r in _acl(cfn)["Rules"] if "RateBasedStatement" in r["Statement"]]
    assert rate["Priority"] == min(r["Priority"] for r in _acl(cfn)["Rules"])
    assert rate["Action"] == {"Block": {}}
    statement = rate["Statement"]["RateBasedStatement"]
    assert statement["AggregateKeyType"] == "IP"
    assert statement["Limit"] == STAGES[stage].waf_requests_per_address_per_5_minutes


def test_the_web_environment_hands_its_load_balancer_config_the_web_acl(cfn):
    """The association lives in EB's stack (.ebextensions/40_web_load_balancer.config), bound
    to EB's load balancer, so it follows a replaced one; this stack holds none bound to an ARN."""
    assert resources(cfn, "AWS::WAFv2::WebACLAssociation") == {}
    (acl_id,) = resources(cfn, "AWS::WAFv2::WebACL")
    for env in resources(cfn, "AWS::ElasticBeanstalk::Environment").values():
        options = {(o["Namespace"], o["OptionName"]): o["Value"] for o in env["Properties"]["OptionSettings"]}
        acl = options.get(("aws:elasticbeanstalk:customoption", "WebAclArn"))
        if env["Properties"]["EnvironmentName"].endswith("-web"):
            assert acl == {"Fn::GetAtt": [acl_id, "Arn"]}
        else:
            assert acl is None


def test_an_alarm_fires_when_the_web_acl_stops_seeing_requests(cfn, stage):
    """A load balancer without the web ACL leaves its metrics silent: silence breaches."""
    prefix = STAGES[stage].prefix
    (alarm,) = [
        a["Properties"]
        for a in resources(cfn, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == f"{prefix}-waf-requests-missing"
    ]
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["Namespace"] == "AWS/WAFV2" and alarm["MetricName"] == "AllowedRequests"
    dims = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert dims == {"WebACL": f"{prefix}-web", "Rule": "ALL", "Region": STAGES[stage].region}
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["Threshold"] == 1


def test_waf_logs_leave_out_tokens_and_cookies(cfn):
    (logging,) = resources(cfn, "AWS::WAFv2::LoggingConfiguration").values()
    redacted = {f["SingleHeader"]["Name"] for f in logging["Properties"]["RedactedFields"]}
    assert redacted == {"authorization", "cookie"}
