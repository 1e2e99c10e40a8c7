"""Monthly cost of a stage at a given number of pings a day.

Sizes come from the stage config (config.py: instance types, minimum counts, Aurora ACUs
and readers, Redshift base RPUs, DMS class, NAT gateways); unit prices from prices.py;
the load model from LOAD below. `python deploy/cost.py` (or `make cost`) prints the
table docs/ARCHITECTURE.md quotes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import StageConfig
from .prices import HOURS_PER_MONTH, price

DAYS_PER_MONTH = 30
SCALES = (1_000_000, 10_000_000, 100_000_000)

# The load model. Each number says where it comes from; change it here, not in the code.
LOAD = {
    # A request (and a queue message) carries ~3 pings: an upload every ~15 s, a ping every ~5 s.
    "pings_per_request": 3,
    # The evening peak, against the daily average.
    "peak_factor": 3,
    # An order is ~30 min on the road at a ping every 5 s.
    "ping_interval_s": 5,
    "pings_per_order": 360,
    # assigned, on the way, arriving, delivered: each one SMS through the SNS topic.
    "sms_per_order": 4,
    # Ingest requests one uvicorn instance (2 vCPU) serves at ~60 % CPU: the measured
    # 300-400 req/s ASGI ceiling halved for validation and the SQS call (ARCHITECTURE §7).
    "web_requests_per_s_per_instance": 150,
    # Batches one worker instance records per second (4 statements at ~2 ms, 8 processes).
    "worker_batches_per_s_per_instance": 100,
    # Aurora: sustained pings/s one ACU absorbs with 3-ping batches (derived from the 2-core
    # measurements, ~200 small batches/s per vCPU, taking 1 vCPU as ~4 ACU).
    "aurora_pings_per_s_per_acu": 150,
    # I/O requests per ping: the row and its indexes, the last-location upsert, DMS's WAL reads.
    "aurora_io_per_ping": 1.0,
    "aurora_bytes_per_ping": 247,  # measured (make bench): heap + indexes while a day takes pings; 196 once packed
    "aurora_retention_days": 90,
    "aurora_base_gb": 10,
    # Redshift: DMS applies every 15 min (96 a day), each at least the 60 s minimum plus
    # its rows at ~20k rows/s on the base RPUs; analysts' queries ~2 active hours a day.
    "redshift_applies_per_day": 96,
    "redshift_rows_per_s": 20_000,
    "redshift_query_hours_per_day": 2,
    "redshift_bytes_per_ping": 120,  # columnar, compressed
    "redshift_storage_days": 365,  # a year of history
    # SQS requests per message (send, receive, delete) and idle long polls per worker
    # instance (3 queues, one 20 s poll each, all month).
    "sqs_requests_per_message": 3,
    "sqs_idle_polls_per_instance": 3 * (86_400 / 20) * DAYS_PER_MONTH,
    # Bytes through NAT per request (SQS send + worker receive, SNS publishes) and out to the
    # internet per request (202 reply) and per ping (one live update to one viewer).
    "nat_bytes_per_request": 6_000,
    "out_bytes_per_request": 600,
    "out_bytes_per_ping": 500,
    # Log volume per request: access line, batch line, EMF lines (one per metric event).
    "log_bytes_per_request": 2_000,
    "custom_metrics": 8,
    "root_volume_gb": 20,
}


SMS_LINE = "SNS SMS (4 per order)"


@dataclass(frozen=True)
class Line:
    component: str
    usd: float


def instances_needed(*, load: float, per_instance: float, minimum: int, maximum: int) -> int:
    return max(minimum, min(maximum, math.ceil(load / per_instance)))


def stage_cost(*, cfg: StageConfig, pings_per_day: int) -> list[Line]:
    """The monthly bill, by component, for `pings_per_day` on stage `cfg`."""
    L = LOAD
    hours = HOURS_PER_MONTH
    pings_s = pings_per_day / 86_400
    requests_day = pings_per_day / L["pings_per_request"]
    requests_s_peak = requests_day / 86_400 * L["peak_factor"]
    requests_month = requests_day * DAYS_PER_MONTH
    pings_month = pings_per_day * DAYS_PER_MONTH

    # Instances run at the count the peak needs all month: the scale-in after the evening
    # peak is not modelled (an over-estimate of at most the difference).
    web = instances_needed(load=requests_s_peak, per_instance=L["web_requests_per_s_per_instance"],
                           minimum=cfg.web_min_instances, maximum=cfg.web_max_instances)  # fmt: skip
    worker = instances_needed(load=requests_s_peak, per_instance=L["worker_batches_per_s_per_instance"],
                              minimum=cfg.worker_min_instances, maximum=cfg.worker_max_instances)  # fmt: skip
    ec2 = (
        web * price(f"ec2.{cfg.web_instance_type}")
        + worker * price(f"ec2.{cfg.worker_instance_type}")
        + price(f"ec2.{cfg.scheduler_instance_type}")
    ) * hours + (web + worker + 1) * L["root_volume_gb"] * price("ebs.gp3")

    # One live viewer per order on the road; a courier on the road pings every ping_interval_s.
    websockets = pings_s * L["ping_interval_s"]
    lcu = max(1.0, requests_s_peak / L["peak_factor"] / 250, websockets / 3000)
    alb = (price("alb.hour") + lcu * price("alb.lcu")) * hours

    writer_acu = max(cfg.aurora_min_acu, min(cfg.aurora_max_acu, pings_s / L["aurora_pings_per_s_per_acu"]))
    # Readers in promotion tier 0-1 scale with the writer (data.py).
    acu_hours = writer_acu * (1 + cfg.aurora_readers) * hours
    storage_gb = L["aurora_base_gb"] + pings_per_day * L["aurora_retention_days"] * L["aurora_bytes_per_ping"] / 1e9
    aurora_compute = acu_hours * price("aurora.acu")
    aurora_io = pings_month * L["aurora_io_per_ping"] / 1e6 * price("aurora.io")
    aurora_storage = storage_gb * price("aurora.storage")

    redis_nodes = 1 + cfg.redis_replicas
    redis = redis_nodes * price(f"elasticache.{cfg.redis_node_type}") * hours

    dms_hours = hours * (2 if cfg.dms_multi_az else 1)
    dms = dms_hours * price(f"dms.{cfg.dms_instance_class}") + cfg.dms_allocated_storage_gb * price("dms.storage")

    rows_per_apply = pings_per_day / L["redshift_applies_per_day"]
    apply_s = max(60.0, 60.0 + rows_per_apply / L["redshift_rows_per_s"])
    active_h_day = L["redshift_applies_per_day"] * apply_s / 3600 + L["redshift_query_hours_per_day"]
    rpu_hours = cfg.redshift_base_rpu * min(24.0, active_h_day) * DAYS_PER_MONTH
    redshift_storage = pings_per_day * L["redshift_storage_days"] * L["redshift_bytes_per_ping"] / 1e9
    redshift = rpu_hours * price("redshift.rpu") + redshift_storage * price("redshift.storage")

    sqs_requests = requests_month * L["sqs_requests_per_message"] + worker * L["sqs_idle_polls_per_instance"]
    sqs = sqs_requests / 1e6 * price("sqs.requests")
    sms = pings_month / L["pings_per_order"] * L["sms_per_order"] * price("sns.sms.brazil")

    nat = cfg.nat_gateways * price("nat.hour") * hours + requests_month * L["nat_bytes_per_request"] / 1e9 * price(
        "nat.gb"
    )
    transfer = (
        (requests_month * L["out_bytes_per_request"] + pings_month * L["out_bytes_per_ping"])
        / 1e9
        * price("transfer.out.gb")
    )
    logs = requests_month * L["log_bytes_per_request"] / 1e9 * price("logs.ingest.gb") + L["custom_metrics"] * price(
        "cloudwatch.metric"
    )

    return [
        Line(
            f"EC2: {web}{'*' if web == cfg.web_max_instances else ''} web"
            f" + {worker}{'*' if worker == cfg.worker_max_instances else ''} worker + 1 scheduler",
            ec2,
        ),
        Line("Application Load Balancer", alb),
        Line(f"Aurora compute: {writer_acu:.1f} ACU x {1 + cfg.aurora_readers} instances", aurora_compute),
        Line("Aurora I/O", aurora_io),
        Line(f"Aurora storage ({storage_gb:,.0f} GB)", aurora_storage),
        Line(f"ElastiCache Redis ({redis_nodes} x {cfg.redis_node_type})", redis),
        Line(f"DMS ({cfg.dms_instance_class}{', Multi-AZ' if cfg.dms_multi_az else ''})", dms),
        Line(f"Redshift Serverless ({cfg.redshift_base_rpu} RPU x {min(24.0, active_h_day):.1f} h/day)", redshift),
        Line("SQS", sqs),
        Line(SMS_LINE, sms),
        Line(f"NAT gateways ({cfg.nat_gateways})", nat),
        Line("Data transfer out", transfer),
        Line("CloudWatch Logs and metrics", logs),
    ]


def cost_table(*, cfg: StageConfig) -> str:
    """A Markdown table: one row per component, one column per scale, then the total.
    Component labels that depend on the scale show the 100M figure's sizing."""
    columns = [stage_cost(cfg=cfg, pings_per_day=n) for n in SCALES]
    header = "| Component | " + " | ".join(f"{n // 1_000_000}M pings/day" for n in SCALES) + " |"
    rows = [header, "| --- |" + " ---: |" * len(SCALES)]
    for i, line in enumerate(columns[0]):
        sizing = " / ".join(_sizing(col[i].component) for col in columns if _sizing(col[i].component))
        label = line.component.split(" (")[0].split(":")[0]
        label = (
            f"{label} ({sizing})" if sizing and len({_sizing(c[i].component) for c in columns}) > 1 else line.component
        )
        rows.append(f"| {label} | " + " | ".join(f"${col[i].usd:,.0f}" for col in columns) + " |")
    totals = [sum(line.usd for line in col) for col in columns]
    without_sms = [sum(line.usd for line in col if line.component != SMS_LINE) for col in columns]
    rows.append("| Total without SMS | " + " | ".join(f"${t:,.0f}" for t in without_sms) + " |")
    rows.append("| **Total per month** | " + " | ".join(f"**${t:,.0f}**" for t in totals) + " |")
    rows.append("")
    rows.append(
        f"`*` at the stage's maximum ({cfg.web_max_instances} web, {cfg.worker_max_instances} worker): raise it."
    )
    return "\n".join(rows)


def _sizing(component: str) -> str:
    if ":" in component:
        return component.split(": ", 1)[1]
    if " (" in component:
        return component.split(" (", 1)[1].rstrip(")")
    return ""
