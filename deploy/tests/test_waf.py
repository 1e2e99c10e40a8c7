"""AWS WAF on the public load balancer: managed rule groups and a rate limit."""

from __future__ import annotations

import json

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


def test_web_acl_is_associated_with_the_web_environments_load_balancer(cfn):
    (assoc,) = resources(cfn, "AWS::WAFv2::WebACLAssociation").values()
    (acl_id,) = resources(cfn, "AWS::WAFv2::WebACL")
    assert assoc["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    lookup_id = assoc["Properties"]["ResourceArn"]["Fn::GetAtt"][0]
    lookup = cfn["Resources"][lookup_id]
    create = json.dumps(lookup["Properties"]["Create"])
    assert "describeEnvironmentResources" in create and "LoadBalancers.0.Name" in create
    (web_id,) = [k for k, v in resources(cfn, "AWS::ElasticBeanstalk::Environment").items()
                 if v["Properties"]["EnvironmentName"].endswith("-web")]
    assert web_id in create or web_id in lookup.get("DependsOn", [])


def test_waf_logs_leave_out_tokens_and_cookies(cfn):
    (logging,) = resources(cfn, "AWS::WAFv2::LoggingConfiguration").values()
    redacted = {f["SingleHeader"]["Name"] for f in logging["Properties"]["RedactedFields"] if "SingleHeader" in f}
    assert {"authorization", "cookie"} <= redacted


def test_no_waf_log_holds_a_tracking_code(templates):
    # /t/<code>, /api/v1/track/<code>, /ws/track/<code>/: the path itself, and the Referer
    # the tracking page's own requests send (the page's URL).
    configurations = [
        c["Properties"]
        for template in templates.values()
        for c in resources(template.to_json(), "AWS::WAFv2::LoggingConfiguration").values()
    ]
    assert configurations
    for configuration in configurations:
        redacted = configuration.get("RedactedFields", [])
        assert {"UriPath": {}} in redacted
        assert {"SingleHeader": {"Name": "referer"}} in redacted
