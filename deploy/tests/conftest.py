from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Environment, assertions  # noqa: E402
from ze_infra.config import STAGES  # noqa: E402
from ze_infra.stack import ZeTrackingStack  # noqa: E402


@pytest.fixture(scope="session")
def stacks(tmp_path_factory) -> dict[str, ZeTrackingStack]:
    app = App(outdir=str(tmp_path_factory.mktemp("cdk.out")))
    return {
        name: ZeTrackingStack(app, f"ZeTracking-{name}", cfg=cfg, env=Environment(region=cfg.region))
        for name, cfg in STAGES.items()
    }


@pytest.fixture(scope="session")
def templates(stacks) -> dict[str, assertions.Template]:
    return {name: assertions.Template.from_stack(stack) for name, stack in stacks.items()}


@pytest.fixture(scope="session", params=["dev", "prod"])
def stage(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def template(templates, stage) -> assertions.Template:
    return templates[stage]


@pytest.fixture(scope="session")
def cfn(template) -> dict:
    return template.to_json()


def resources(cfn: dict, type_: str) -> dict[str, dict]:
    return {k: v for k, v in cfn["Resources"].items() if v["Type"] == type_}


def environment_variables(env: dict) -> dict:
    """An Elastic Beanstalk environment resource's environment properties (what the app reads)."""
    return {
        o["OptionName"]: o["Value"]
        for o in env["Properties"]["OptionSettings"]
        if o["Namespace"] == "aws:elasticbeanstalk:application:environment"
    }


def log_group_names(cfn: dict) -> dict[str, object]:
    """Each named log group's logical id and name."""
    return {
        k: v["Properties"]["LogGroupName"]
        for k, v in resources(cfn, "AWS::Logs::LogGroup").items()
        if "LogGroupName" in v["Properties"]
    }
