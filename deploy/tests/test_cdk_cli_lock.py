"""The CDK CLI comes from a lock in deploy/ (npm), pinned with its integrity hash, and the
runbook runs that one (`npx cdk`), never a global install of whatever is newest."""

from __future__ import annotations

import json
import re
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[1]


def test_aws_cdk_is_pinned_exactly_and_locked_with_its_integrity():
    package = json.loads((DEPLOY / "package.json").read_text())
    version = package["devDependencies"]["aws-cdk"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    lock = json.loads((DEPLOY / "package-lock.json").read_text())
    locked = lock["packages"]["node_modules/aws-cdk"]
    assert locked["version"] == version
    assert locked["integrity"].startswith("sha512-")


def test_the_runbook_runs_the_locked_cli():
    readme = (DEPLOY / "README.md").read_text()
    assert "npm ci" in readme
    assert "npm i -g aws-cdk" not in readme
    bare = [line for line in readme.splitlines() if re.search(r"(?<![\w/-])cdk (deploy|bootstrap|diff|synth)", line)]
    assert all("npx cdk" in line for line in bare), bare
