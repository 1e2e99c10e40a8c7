"""Service roles trust their service only on behalf of this account (confused deputy):
`aws:SourceAccount` wherever AWS documents it for the service's role trust policy
(EventBridge Scheduler, CodeBuild, DMS)."""

from __future__ import annotations

import json

from conftest import resources

DOCUMENTED = ("scheduler.amazonaws.com", "codebuild.amazonaws.com", "dms.amazonaws.com")


def _service(statement: dict) -> list[str]:
    services = statement.get("Principal", {}).get("Service", [])
    return [json.dumps(s) if not isinstance(s, str) else s for s in ([services] if not isinstance(services, list) else services)]


def _documented(service: str) -> bool:
    # DMS's Secrets Manager role trusts the regional principal, dms.<region>.amazonaws.com.
    return service in DOCUMENTED or (service.startswith("dms") or '"dms.' in service)


def test_service_roles_trust_their_service_only_for_this_account(cfn):
    checked = 0
    for name, role in resources(cfn, "AWS::IAM::Role").items():
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            services = _service(statement)
            if not any(_documented(s) for s in services):
                continue
            checked += 1
            assert all(_documented(s) for s in services), (name, services)
            condition = statement.get("Condition", {}).get("StringEquals", {})
            assert condition.get("aws:SourceAccount") == {"Ref": "AWS::AccountId"}, (name, statement)
    # Scheduler (2), CodeBuild (release, manage, warehouse build), DMS (S3 and secrets roles).
    assert checked >= 7
