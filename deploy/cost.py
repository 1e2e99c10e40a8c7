#!/usr/bin/env python3
"""Monthly cost of a stage at 1M, 10M and 100M pings a day: `make cost` (prod) or
`python deploy/cost.py dev`. Sizes from ze_infra/config.py, prices from ze_infra/prices.py,
the measured capacity in ze_infra/capacity.py, the load model in ze_infra/cost.py.
docs/ARCHITECTURE.md quotes the prod table; the figures it rests on print under it."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ze_infra.config import stage_config  # noqa: E402
from ze_infra.cost import cost_report  # noqa: E402

if __name__ == "__main__":
    print(cost_report(cfg=stage_config(sys.argv[1] if len(sys.argv) > 1 else "prod")))
