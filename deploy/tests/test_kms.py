"""The stage's keys: AWS services may use them only on behalf of this account."""

from __future__ import annotations

import json

from conftest import resources


def _service_statements(cfn: dict) -> list[dict]:
    return [
        s
        for key in resources(cfn, "AWS::KMS::Key").values()
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if "Service" in s.get("Principal", {})
    ]


def test_every_service_grant_on_the_key_is_bound_to_this_account(cfn):
    statements = _service_statements(cfn)
    assert statements
    for s in statements:
        conditions = s.get("Condition", {})
        bound = json.dumps(conditions)
        assert "AWS::AccountId" in bound, s
        assert (
            "aws:SourceAccount" in bound or "kms:EncryptionContext:aws:logs:arn" in bound or "kms:CallerAccount" in bound
        ), s


def test_cloudwatch_alarms_use_the_key_only_for_this_accounts_alarms(cfn):
    (s,) = [s for s in _service_statements(cfn) if s["Principal"]["Service"] == "cloudwatch.amazonaws.com"]
    assert set(s["Condition"]["StringEquals"]) == {"aws:SourceAccount"}
    assert ":alarm:*" in json.dumps(s["Condition"]["ArnLike"]["aws:SourceArn"])


def test_cloudwatch_logs_use_the_key_only_for_this_accounts_log_groups(cfn):
    (s,) = [s for s in _service_statements(cfn) if "logs." in json.dumps(s["Principal"]["Service"])]
    context = json.dumps(s["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])
    assert ":log-group:*" in context and "AWS::AccountId" in context
