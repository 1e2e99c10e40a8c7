"""The CDK app itself: stage overrides from context, the account stack, what survives a failed create."""

from __future__ import annotations

import json

import pytest
from app import build
from aws_cdk import assertions
from conftest import resources
from ze_infra.config import stage_config

DMS_ACCOUNT_ROLES = {"dms-vpc-role", "dms-cloudwatch-logs-role"}


def _template(app, name: str) -> dict:
    return assertions.Template.from_stack(app.node.find_child(name)).to_json()


def _role_names(cfn: dict) -> set[str]:
    return {
        r["Properties"]["RoleName"]
        for r in resources(cfn, "AWS::IAM::Role").values()
        if isinstance(r["Properties"].get("RoleName"), str)
    }


def test_stage_field_from_context_reaches_the_template(tmp_path):
    app = build(str(tmp_path), context={"stage": "prod", "prod.web_max_instances": "12"})
    (web,) = [
        e
        for e in resources(_template(app, "ZeTracking-prod"), "AWS::ElasticBeanstalk::Environment").values()
        if e["Properties"]["EnvironmentName"].endswith("-web")
    ]
    sizes = {
        o["OptionName"]: o["Value"]
        for o in web["Properties"]["OptionSettings"]
        if o["Namespace"] == "aws:autoscaling:asg"
    }
    assert sizes["MaxSize"] == "12"


def test_context_values_take_the_field_type():
    cfg = stage_config(
        "prod",
        {
            "prod.deletion_protection": "false",
            "prod.aurora_max_acu": "16.5",
            "prod.availability_zones": "sa-east-1a,sa-east-1b",
        },
    )
    assert cfg.deletion_protection is False
    assert cfg.aurora_max_acu == 16.5
    assert cfg.availability_zones == ("sa-east-1a", "sa-east-1b")
    # Typed values (cdk.json) pass as they are.
    assert stage_config("dev", {"dev.web_max_instances": 5}).web_max_instances == 5


@pytest.mark.parametrize(
    "context, message",
    [
        ({"prod.web_max_instanses": "12"}, "web_max_instanses"),
        ({"prod.web_max_instances": "twelve"}, "web_max_instances"),
        ({"prod.deletion_protection": "maybe"}, "deletion_protection"),
        ({"prod.name": "dev"}, "name"),
    ],
)
def test_unknown_field_or_bad_value_stops_synthesis(tmp_path, context, message):
    with pytest.raises(ValueError, match=message):
        build(str(tmp_path), context={"stage": "prod", **context})


def test_dms_account_roles_live_in_the_account_stack_only(tmp_path):
    app = build(str(tmp_path))
    assert _role_names(_template(app, "ZeTracking-account")) == DMS_ACCOUNT_ROLES
    for stage in ("dev", "prod"):
        assert not DMS_ACCOUNT_ROLES & _role_names(_template(app, f"ZeTracking-{stage}"))


def test_account_stack_is_built_once_whatever_the_stage(tmp_path):
    app = build(str(tmp_path), context={"stage": "prod"})
    assert {c.node.id for c in app.node.children} == {"ZeTracking-prod", "ZeTracking-account"}


def test_kept_resources_are_not_kept_after_a_failed_create(tmp_path):
    """A resource kept on delete but created by a failed first deploy would block the next
    one ("already exists"); CloudFormation deletes it when its own create is rolled back."""
    app = build(str(tmp_path))
    for name in ("ZeTracking-dev", "ZeTracking-prod", "ZeTracking-account"):
        cfn = _template(app, name)
        policies = {(k, v.get("DeletionPolicy")) for k, v in cfn["Resources"].items()}
        assert not {k for k, p in policies if p == "Retain"}, name
    prod = _template(app, "ZeTracking-prod")
    kept = {k for k, v in prod["Resources"].items() if v.get("DeletionPolicy") == "RetainExceptOnCreate"}
    assert any(prod["Resources"][k]["Type"] == "AWS::KMS::Key" for k in kept)
    assert any(prod["Resources"][k]["Type"] == "AWS::Logs::LogGroup" for k in kept)
    assert json.dumps(prod).count('"UpdateReplacePolicy": "Retain"') >= len(kept)
