"""Staff access in the deployed stages: the second factor is on, and the staff paths may
be limited to a list of addresses in WAF (off unless a stage lists CIDRs)."""

from __future__ import annotations

import pytest
from aws_cdk import App, Environment, assertions
from conftest import environment_variables, resources
from ze_infra.config import STAGES, stage_config
from ze_infra.stack import ZeTrackingStack


def test_every_deployed_environment_requires_the_staff_second_factor(cfn):
    environments = resources(cfn, "AWS::ElasticBeanstalk::Environment").values()
    assert environments
    for env in environments:
        assert environment_variables(env)["STAFF_OTP_REQUIRED"] == "true"


def test_no_staff_allow_list_unless_a_stage_lists_addresses(cfn, stage):
    assert STAGES[stage].staff_allowed_cidrs == ()
    assert resources(cfn, "AWS::WAFv2::IPSet") == {}


@pytest.fixture(scope="module")
def allow_listed() -> dict:
    cfg = stage_config("prod", {"prod.staff_allowed_cidrs": "203.0.113.0/24,198.51.100.7/32,2001:db8::/32"})
    stack = ZeTrackingStack(App(), "AllowList", cfg=cfg, env=Environment(region=cfg.region))
    return assertions.Template.from_stack(stack).to_json()


def test_listed_addresses_become_one_ip_set_per_address_version(allow_listed):
    sets = {
        s["Properties"]["IPAddressVersion"]: s["Properties"]
        for s in resources(allow_listed, "AWS::WAFv2::IPSet").values()
    }
    assert sets["IPV4"]["Addresses"] == ["203.0.113.0/24", "198.51.100.7/32"]
    assert sets["IPV6"]["Addresses"] == ["2001:db8::/32"]
    assert {s["Scope"] for s in sets.values()} == {"REGIONAL"}


def test_staff_paths_from_other_addresses_are_blocked(allow_listed):
    from ze_infra.waf import STAFF_PATHS

    (acl,) = resources(allow_listed, "AWS::WAFv2::WebACL").values()
    (rule,) = [r for r in acl["Properties"]["Rules"] if r["Name"] == "StaffPathsFromAllowedAddressesOnly"]
    assert rule["Action"] == {"Block": {}}
    paths, outside = rule["Statement"]["AndStatement"]["Statements"]
    matched = [s["ByteMatchStatement"] for s in paths["OrStatement"]["Statements"]]
    assert [m["SearchString"] for m in matched] == list(STAFF_PATHS)
    for match in matched:
        assert match["PositionalConstraint"] == "STARTS_WITH"
        # Django decodes the path before routing it: /%61dmin/ is /admin/.
        assert {"Type": "URL_DECODE", "Priority": 0} in match["TextTransformations"]
    refs = outside["NotStatement"]["Statement"]["OrStatement"]["Statements"]
    ip_sets = resources(allow_listed, "AWS::WAFv2::IPSet")
    assert {r["IPSetReferenceStatement"]["Arn"]["Fn::GetAtt"][0] for r in refs} == set(ip_sets)


def test_staff_paths_cover_the_admin_the_backoffice_and_the_fleet_socket():
    from ze_infra.waf import STAFF_PATHS

    assert {"/admin/", "/backoffice/", "/ws/fleet/", "/accounts/", "/api/v1/couriers"} <= set(STAFF_PATHS)
