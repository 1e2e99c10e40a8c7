"""Monthly cost of a stage at a given number of pings a day.

Sizes come from the stage config (config.py: instance types, minimum and maximum counts,
Aurora ACUs and readers, Redshift base RPUs, DMS class, NAT gateways); what one web or worker
instance carries from the measured figures (capacity.py, docs/performance/capacity.json);
unit prices from prices.py; the load model from LOAD below. `python deploy/cost.py` (or
`make cost`) prints the table docs/ARCHITECTURE.md quotes and the figures it rests on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .capacity import WEB_TARGET_UTILISATION, Capacity, capacity_measured
from .config import CELERY_QUEUES, StageConfig
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
    # assigned, on the way, arriving, delivered (orders NotificationKind): each one task on the
    # notifications queue and one publish to the SNS topic, delivered to the one HTTP/S
    # subscriber, Ze's own messaging service. Nothing in the stack sends SMS.
    "notifications_per_order": 4,
    "notification_subscribers": 1,
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
    # SQS calls per message: the web's SendMessage (one per API request, synchronous), the
    # worker's ReceiveMessage and its DeleteMessage (each message acknowledged on its own).
    "sqs_calls_per_message": 3,
    # Long polls that come back empty, all month: each worker instance polls the three Celery
    # queues and EB's daemon (sqsd) its worker-tier queue; the scheduler's sqsd polls too.
    # 20 s: messaging.py LONG_POLL_SECONDS (a test keeps them equal).
    "sqs_long_poll_s": 20,
    "sqs_idle_polls_per_worker_instance": (len(CELERY_QUEUES) + 1) * 86_400 / 20 * DAYS_PER_MONTH,
    "sqs_idle_polls_scheduler": 86_400 / 20 * DAYS_PER_MONTH,
    # Bytes through NAT per request (SQS send + worker receive, SNS publishes) and out to the
    # internet per request (202 reply) and per ping (one live update to one viewer).
    "nat_bytes_per_request": 6_000,
    "out_bytes_per_request": 600,
    "out_bytes_per_ping": 500,
    # Log volume per request: access line, batch line, EMF lines (one per metric event).
    "log_bytes_per_request": 2_000,
    "custom_metrics": 8,
    "root_volume_gb": 20,
    # AWS WAF (waf.py): the rate limit and three AWS managed rule groups; every request is
    # inspected and logged to CloudWatch Logs (a JSON record with the headers, ~1.5 KB).
    "waf_rules": 4,
    "waf_log_bytes_per_request": 1_500,
    # VPC flow logs (network.py, all traffic, to CloudWatch Logs): a phone's upload opens a
    # connection through the ALB, about one record per request; ~150 B per record ingested.
    "flow_log_records_per_request": 1,
    "flow_log_bytes_per_record": 150,
    # Secrets Manager secrets and customer managed KMS keys the stack creates (a test counts
    # them in the template). KMS requests: SQS reuses a data key for an hour per queue and
    # role, SNS, CloudWatch Logs and the secrets' reads at boot a few per hour more.
    "secrets": 11,
    "kms_keys": 4,
    "kms_requests_per_hour": 100,
}


@dataclass(frozen=True)
class Line:
    component: str
    usd: float


@dataclass(frozen=True)
class Instances:
    web: int
    worker: int
    # What the peak needs beyond the stage's maximum (the model then prices the maximum).
    capped: bool


def instances_at(*, cfg: StageConfig, pings_per_day: int, capacity: Capacity | None = None) -> Instances:
    """Web and worker instances at the evening peak: the web at its target utilisation of
    the measured requests/s, the workers at the measured batches/s (a request is a message)."""
    capacity = capacity or capacity_measured()
    requests_s_peak = pings_per_day / LOAD["pings_per_request"] / 86_400 * LOAD["peak_factor"]
    web = math.ceil(requests_s_peak / (capacity.web_requests_per_s_per_instance * WEB_TARGET_UTILISATION))
    worker = math.ceil(requests_s_peak / capacity.worker_batches_per_s_per_instance)
    return Instances(
        web=max(cfg.web_min_instances, min(cfg.web_max_instances, web)),
        worker=max(cfg.worker_min_instances, min(cfg.worker_max_instances, worker)),
        capped=web > cfg.web_max_instances or worker > cfg.worker_max_instances,
    )


def stage_cost(*, cfg: StageConfig, pings_per_day: int) -> list[Line]:
    """The monthly bill, by component, for `pings_per_day` on stage `cfg`."""
    L = LOAD
    hours = HOURS_PER_MONTH
    pings_s = pings_per_day / 86_400
    requests_day = pings_per_day / L["pings_per_request"]
    requests_s_peak = requests_day / 86_400 * L["peak_factor"]
    requests_month = requests_day * DAYS_PER_MONTH
    pings_month = pings_per_day * DAYS_PER_MONTH
    notifications_month = pings_month / L["pings_per_order"] * L["notifications_per_order"]

    # Instances run at the count the peak needs all month: the scale-in after the evening
    # peak is not modelled (an over-estimate of at most the difference).
    need = instances_at(cfg=cfg, pings_per_day=pings_per_day)
    web, worker = need.web, need.worker
    ec2 = (
        web * price(f"ec2.{cfg.web_instance_type}")
        + worker * price(f"ec2.{cfg.worker_instance_type}")
        + price(f"ec2.{cfg.scheduler_instance_type}")
    ) * hours + (web + worker + 1) * L["root_volume_gb"] * price("ebs.gp3")

    # One live viewer per order on the road; a courier on the road pings every ping_interval_s.
    websockets = pings_s * L["ping_interval_s"]
    lcu = max(1.0, requests_s_peak / L["peak_factor"] / 250, websockets / 3000)
    alb = (price("alb.hour") + lcu * price("alb.lcu")) * hours

    waf = price("waf.acl") + L["waf_rules"] * price("waf.rule") + requests_month / 1e6 * price("waf.requests")
    waf_logs = requests_month * L["waf_log_bytes_per_request"] / 1e9 * price("logs.vended.gb")
    flow_logs = (
        requests_month * L["flow_log_records_per_request"] * L["flow_log_bytes_per_record"] / 1e9
        * price("logs.vended.gb")
    )  # fmt: skip

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

    sqs_calls = (
        (requests_month + notifications_month) * L["sqs_calls_per_message"]
        + worker * L["sqs_idle_polls_per_worker_instance"]
        + L["sqs_idle_polls_scheduler"]
    )
    sqs = sqs_calls / 1e6 * price("sqs.requests")
    sns = notifications_month / 1e6 * (
        price("sns.publish") + L["notification_subscribers"] * price("sns.https")
    )  # fmt: skip

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
    secrets = L["secrets"] * price("secretsmanager.secret")
    kms = L["kms_keys"] * price("kms.key") + L["kms_requests_per_hour"] * hours / 1e6 * price("kms.requests")

    return [
        Line(
            f"EC2: {web}{'*' if web == cfg.web_max_instances else ''} web"
            f" + {worker}{'*' if worker == cfg.worker_max_instances else ''} worker + 1 scheduler",
            ec2,
        ),
        Line("Application Load Balancer", alb),
        Line(f"AWS WAF (web ACL, {L['waf_rules']} rules, requests)", waf),
        Line("WAF logs", waf_logs),
        Line(f"Aurora compute: {writer_acu:.1f} ACU x {1 + cfg.aurora_readers} instances", aurora_compute),
        Line("Aurora I/O", aurora_io),
        Line(f"Aurora storage ({storage_gb:,.0f} GB)", aurora_storage),
        Line(f"ElastiCache Redis ({redis_nodes} x {cfg.redis_node_type})", redis),
        Line(f"DMS ({cfg.dms_instance_class}{', Multi-AZ' if cfg.dms_multi_az else ''})", dms),
        Line(f"Redshift Serverless ({cfg.redshift_base_rpu} RPU x {min(24.0, active_h_day):.1f} h/day)", redshift),
        Line("SQS (send, receive, delete per message; idle polls)", sqs),
        Line(f"SNS notifications ({L['notifications_per_order']} per order, HTTP/S delivery)", sns),
        Line(f"NAT gateways ({cfg.nat_gateways})", nat),
        Line("Data transfer out", transfer),
        Line("CloudWatch Logs and metrics", logs),
        Line("VPC flow logs", flow_logs),
        Line(f"Secrets Manager ({L['secrets']} secrets)", secrets),
        Line(f"KMS ({L['kms_keys']} keys, requests)", kms),
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
    rows.append("| **Total per month** | " + " | ".join(f"**${t:,.0f}**" for t in totals) + " |")
    if any(instances_at(cfg=cfg, pings_per_day=n).capped for n in SCALES):
        rows.append("")
        rows.append(
            f"`*` at the stage's maximum ({cfg.web_max_instances} web, {cfg.worker_max_instances} worker): raise it."
        )
    return "\n".join(rows)


def cost_report(*, cfg: StageConfig) -> str:
    """What `make cost` prints: the table, then the measured figures and targets under it."""
    from .capacity import web_requests_per_target_per_minute, worker_backlog_per_instance

    capacity = capacity_measured()
    peak = [n / LOAD["pings_per_request"] / 86_400 * LOAD["peak_factor"] for n in SCALES]
    needs = [instances_at(cfg=cfg, pings_per_day=n) for n in SCALES]
    backlog = worker_backlog_per_instance(capacity, acceptable_latency_s=cfg.worker_acceptable_latency_seconds)
    return "\n".join(
        [
            cost_table(cfg=cfg),
            "",
            f"Figures ({cfg.name}):",
            f"- measured on the SQS path: {capacity.source}; lower bounds of a 2-vCPU instance",
            f"- web: {capacity.web_requests_per_s_per_instance:,.0f} requests/s per instance (2 gunicorn sync"
            f" processes, one SendMessage each), target tracking at {WEB_TARGET_UTILISATION:.0%}:"
            f" {web_requests_per_target_per_minute(capacity):,} ALB requests per target per minute",
            f"- worker: {capacity.worker_batches_per_s_per_instance:,.0f} batches/s per instance, target"
            f" {backlog:,} pings batches waiting or in flight per instance"
            f" ({cfg.worker_acceptable_latency_seconds} s acceptable latency);"
            f" steps out while the oldest batch is older than {cfg.worker_queue_age_scale_out_seconds} s",
            "- peak requests/s (= pings queue messages/s): " + " / ".join(f"{r:,.0f}" for r in peak),
            "- instances at the peak, web + worker: "
            + " / ".join(f"{n.web} + {n.worker}" for n in needs)
            + f" (maxima {cfg.web_max_instances} + {cfg.worker_max_instances})",
        ]
    )


def _sizing(component: str) -> str:
    if ":" in component:
        return component.split(": ", 1)[1]
    if " (" in component:
        return component.split(" (", 1)[1].rstrip(")")
    return ""
