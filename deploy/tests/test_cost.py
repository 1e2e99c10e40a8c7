"""The cost model reads the stage config and the one price file; the architecture
document quotes its output exactly."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from ze_infra.config import STAGES
from ze_infra.cost import SCALES, cost_table, stage_cost
from ze_infra.prices import PRICES

DOC = Path(__file__).resolve().parents[2] / "docs" / "ARCHITECTURE.md"


def test_the_architecture_doc_quotes_the_cost_script_for_prod():
    quoted = re.search(r"<!-- cost:prod -->\n(.*?)\n<!-- /cost:prod -->", DOC.read_text(), re.S)
    assert quoted, "docs/ARCHITECTURE.md lost its cost:prod block"
    assert quoted.group(1) == cost_table(cfg=STAGES["prod"]), "run `make cost` and paste its output into the doc"


def test_every_stage_size_has_a_price_with_its_date():
    for cfg in STAGES.values():
        for key in (
            f"ec2.{cfg.web_instance_type}", f"ec2.{cfg.worker_instance_type}", f"ec2.{cfg.scheduler_instance_type}",
            f"elasticache.{cfg.redis_node_type}", f"dms.{cfg.dms_instance_class}",
        ):  # fmt: skip
            assert key in PRICES, key
    assert all(re.fullmatch(r"\d{4}-\d{2}", p.as_of) for p in PRICES.values())


def _line(lines, prefix):
    (line,) = [x for x in lines if x.component.startswith(prefix)]
    return line.usd


def test_the_model_follows_the_stage_config():
    prod = STAGES["prod"]
    bigger = dataclasses.replace(prod, redshift_base_rpu=prod.redshift_base_rpu * 2, aurora_readers=2)
    base, more = stage_cost(cfg=prod, pings_per_day=SCALES[0]), stage_cost(cfg=bigger, pings_per_day=SCALES[0])
    assert _line(more, "Redshift") > 1.9 * _line(base, "Redshift")
    assert _line(more, "Aurora compute") == 1.5 * _line(base, "Aurora compute")


def test_prod_prices_redshift_and_aurora_at_their_configured_floor():
    prod = STAGES["prod"]
    lines = stage_cost(cfg=prod, pings_per_day=SCALES[0])
    hours = 730
    # Never below the floor the config asks for: min ACUs on the writer and each reader,
    # base RPUs for at least the 96 daily DMS applies of 60 s each.
    assert _line(lines, "Aurora compute") >= prod.aurora_min_acu * (1 + prod.aurora_readers) * hours * 0.2 - 1
    assert _line(lines, "Redshift") >= prod.redshift_base_rpu * 96 / 60 * 30 * PRICES["redshift.rpu"].usd
    assert _line(lines, "SNS SMS") > 0
