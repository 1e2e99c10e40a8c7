from __future__ import annotations

from ze_infra.checkov import RESOURCE_SKIPS, SKIPS


def test_every_skipped_check_has_a_reason(cfn):
    for resource in cfn["Resources"].values():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV") and len(skip["comment"]) > 20


def test_skips_are_few_and_listed_in_one_place():
    assert sum(len(v) for v in [*SKIPS.values(), *RESOURCE_SKIPS.values()]) <= 7
