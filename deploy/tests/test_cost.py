"""The cost model reads the stage config and the one price file; the architecture
document quotes its output exactly."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from conftest import resources
from ze_infra.capacity import capacity_measured
from ze_infra.config import STAGES
from ze_infra.cost import LOAD, SCALES, cost_report, cost_table, instances_at, stage_cost
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
    assert _line(lines, "SNS notifications") > 0


def _dollars(cell: str) -> int:
    return int(cell.strip(" *$").replace(",", ""))


def test_the_table_total_is_the_sum_of_its_lines_and_sqs_counts_each_call():
    prod = STAGES["prod"]
    rows = [r.split("|")[2:-1] for r in cost_table(cfg=prod).splitlines() if r.startswith("| ") and "$" in r]
    lines, (total,) = rows[:-1], rows[-1:]
    assert len(lines) == len(stage_cost(cfg=prod, pings_per_day=SCALES[0]))
    for column, n in enumerate(SCALES):
        cells = [_dollars(row[column]) for row in lines]
        # Each cell is rounded to the dollar: the total may differ by half a dollar a line.
        assert abs(_dollars(total[column]) - sum(cells)) <= len(cells) / 2, n
    # SQS: one SendMessage per API request, one ReceiveMessage and one DeleteMessage per
    # message, for the pings and the notifications queue; idle long polls on top.
    low, high = (stage_cost(cfg=prod, pings_per_day=n) for n in (SCALES[0], SCALES[2]))
    requests_month = (SCALES[2] - SCALES[0]) / LOAD["pings_per_request"] * 30
    orders_month = (SCALES[2] - SCALES[0]) / LOAD["pings_per_order"] * 30
    calls = requests_month * 3 + orders_month * LOAD["notifications_per_order"] * 3
    extra_polls = _idle_polls_difference(prod)
    expected = (calls + extra_polls) / 1e6 * PRICES["sqs.requests"].usd
    assert _line(high, "SQS") - _line(low, "SQS") == pytest.approx(expected)


def _idle_polls_difference(cfg) -> float:
    need = instances_at(cfg=cfg, pings_per_day=SCALES[2]), instances_at(cfg=cfg, pings_per_day=SCALES[0])
    return (need[0].worker - need[1].worker) * LOAD["sqs_idle_polls_per_worker_instance"]


def test_the_bill_has_the_lines_of_what_runs():
    components = [x.component for x in stage_cost(cfg=STAGES["prod"], pings_per_day=SCALES[0])]
    for prefix in ("AWS WAF", "WAF logs", "VPC flow logs", "Secrets Manager", "KMS", "SQS", "SNS notifications"):
        assert any(c.startswith(prefix) for c in components), prefix
    # Nothing sends SMS: notifications leave through the SNS topic Ze's messaging consumes.
    assert not any("SMS" in c for c in components)
    assert "sns.sms.brazil" not in PRICES


def test_the_model_counts_the_secrets_and_keys_the_template_creates(cfn):
    assert len(resources(cfn, "AWS::SecretsManager::Secret")) == LOAD["secrets"]
    assert len(resources(cfn, "AWS::KMS::Key")) == LOAD["kms_keys"]
    (acl,) = resources(cfn, "AWS::WAFv2::WebACL").values()
    assert len(acl["Properties"]["Rules"]) == LOAD["waf_rules"]


def test_the_autoscaling_maxima_of_prod_cover_the_model_at_100x(templates):
    need = instances_at(cfg=STAGES["prod"], pings_per_day=SCALES[2])
    maxima = {}
    for env in resources(templates["prod"].to_json(), "AWS::ElasticBeanstalk::Environment").values():
        settings = {(s["Namespace"], s["OptionName"]): s.get("Value") for s in env["Properties"]["OptionSettings"]}
        role = settings[("aws:elasticbeanstalk:application:environment", "ZE_PROCESS")]
        maxima[role] = int(settings[("aws:autoscaling:asg", "MaxSize")])
    # Room for a rolling deploy's extra instance above what the peak needs.
    assert maxima["web"] >= need.web + 1, (maxima, need)
    assert maxima["worker"] >= need.worker + 1, (maxima, need)
    assert not need.capped


def test_make_cost_prints_the_figures_it_rests_on():
    text = cost_report(cfg=STAGES["prod"])
    capacity = capacity_measured()
    assert cost_table(cfg=STAGES["prod"]) in text
    assert capacity.source in text
    assert f"{capacity.web_requests_per_s_per_instance:,.0f} requests/s" in text
    assert f"{capacity.worker_batches_per_s_per_instance:,.0f} batches/s" in text


def test_the_idle_polls_follow_the_queues_long_poll():
    from ze_infra.messaging import LONG_POLL_SECONDS

    assert LOAD["sqs_long_poll_s"] == LONG_POLL_SECONDS
