#!/usr/bin/env python3
"""CDK entry point: `python3 app.py` (or `make synth`) writes cdk.out/ for every stage.

Choose one stage with `-c stage=dev` when using the CDK CLI, or STAGE=dev here; override a
field of a stage's config with `-c prod.web_max_instances=12` (ze_infra/config.py). The
account stack (`ZeTracking-account`, the roles an account holds once) is always built.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aws_cdk as cdk  # noqa: E402
from ze_infra.account import AccountStack  # noqa: E402
from ze_infra.config import STAGES, stage_config  # noqa: E402
from ze_infra.stack import ZeTrackingStack  # noqa: E402


def build(outdir: str | None = None, context: dict[str, Any] | None = None) -> cdk.App:
    app = cdk.App(outdir=outdir, context=context)
    values = app.node.get_all_context()
    wanted = values.get("stage") or os.environ.get("STAGE") or "all"
    if wanted != "all" and wanted not in STAGES:
        raise ValueError(f"unknown stage {wanted!r}; known: {sorted(STAGES)}")
    names = list(STAGES) if wanted == "all" else [wanted]
    for name in names:
        cfg = stage_config(name, values)
        ZeTrackingStack(
            app,
            f"ZeTracking-{name}",
            cfg=cfg,
            # Region only: no account look-ups, so synthesis needs no credentials.
            env=cdk.Environment(region=cfg.region),
            synthesizer=cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
        )
    AccountStack(
        app,
        "ZeTracking-account",
        env=cdk.Environment(region=STAGES[names[0]].region),
        synthesizer=cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
    )
    return app


if __name__ == "__main__":
    out = os.environ.get("CDK_OUTDIR") or str(Path(__file__).resolve().parent / "cdk.out")
    build(None if os.environ.get("CDK_OUTDIR") == "" else out).synth()
