"""Per-stage sizes, counts and names. The only place a number for a stage is chosen.

`app.py` picks the stages to synthesise from the `stage` context value
(`-c stage=dev`), default both. Any field can be overridden from context as
`-c prod.web_max_instances=12` (see `stage_config`).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any

PROJECT = "ze-tracking"

# Celery queue names, as `ze_tracking/settings/celery.py` names them (CELERY_TASK_ROUTES and
# the kombu `predefined_queues` map name -> URL from SQS_<NAME>_QUEUE_URL).
CELERY_QUEUES: tuple[str, ...] = ("pings", "notifications", "maintenance")

# The longest task (a batch of <= 500 pings, or a notification with HTTP timeouts of
# <= 10 s) finishes in under 60 s. The visibility timeout must exceed it with room for
# a slow database, or SQS hands the message to a second worker while the first still
# runs it (the tasks are idempotent, so that costs work, not correctness).
LONGEST_TASK_SECONDS = 60


# Elastic Beanstalk platform branches this app runs on (`aws elasticbeanstalk
# list-platform-branches`). A name outside this set fails synth: a typo would otherwise
# surface only at deploy time, as a lookup that finds no platform.
PLATFORM_BRANCHES: frozenset[str] = frozenset(
    {
        "Python 3.11 running on 64bit Amazon Linux 2023",
        "Python 3.12 running on 64bit Amazon Linux 2023",
        "Python 3.13 running on 64bit Amazon Linux 2023",
    }
)

# The app's metrics namespace in CloudWatch (embedded metric format; infra/observability/metrics.py).
METRICS_NAMESPACE = "ZeTracking"


@dataclass(frozen=True)
class StageConfig:
    name: str
    region: str = "sa-east-1"
    # Explicit zones keep the stacks free of account look-ups (synth works offline).
    availability_zones: tuple[str, ...] = ("sa-east-1a", "sa-east-1b", "sa-east-1c")
    vpc_cidr: str = "10.40.0.0/16"
    nat_gateways: int = 1

    # Web tier: REST under gunicorn (2 sync processes), websockets under uvicorn, behind the
    # ALB. It tracks ALB requests per target at half an instance's measured capacity
    # (capacity.py reads the figures from docs/performance/capacity.json).
    web_instance_type: str = "t4g.small"
    web_min_instances: int = 1
    web_max_instances: int = 2
    # Celery workers. They track the pings backlog per instance (messages waiting and in
    # flight) at what an instance clears in this many seconds: one upload interval of the
    # courier app, so the live map is at most one upload behind (AWS's SQS guidance:
    # backlog per instance = acceptable latency / time per message; capacity.py).
    worker_instance_type: str = "t4g.small"
    worker_min_instances: int = 1
    worker_max_instances: int = 2
    worker_concurrency: int = 4
    worker_acceptable_latency_seconds: int = 15
    # And step out, by a share of the group, while the oldest pings batch waits longer than
    # this (a backlog the target has not caught yet: slow batches, a burst after an outage).
    worker_queue_age_scale_out_seconds: int = 30
    scheduler_instance_type: str = "t4g.micro"
    # A platform branch, never a patch version: the stack resolves the branch's
    # recommended version at deploy time (compute.py), and managed updates keep it current.
    # Must be one of PLATFORM_BRANCHES (synth fails otherwise). Needs a version released on
    # or after 2026-01-13 (JSON keys of Secrets Manager secrets in environment variables).
    platform_branch: str = "Python 3.11 running on 64bit Amazon Linux 2023"
    domain_name: str = "tracking.dev.ze.delivery"

    # Aurora PostgreSQL Serverless v2.
    aurora_engine_version: str = "17.4"
    aurora_min_acu: float = 0.5
    aurora_max_acu: float = 4
    aurora_readers: int = 1
    backup_retention_days: int = 7
    deletion_protection: bool = False
    database_name: str = "ze_tracking"

    # ElastiCache Redis (Channels layer + cache).
    redis_node_type: str = "cache.t4g.micro"
    redis_replicas: int = 0
    redis_engine_version: str = "7.1"

    # DMS and Redshift Serverless.
    dms_instance_class: str = "dms.t3.medium"
    dms_allocated_storage_gb: int = 50
    dms_engine_version: str = "3.6.1"
    dms_multi_az: bool = False
    redshift_base_rpu: int = 8
    redshift_database: str = "analytics"

    # AWS WAF on the public load balancer: requests per client address per 5 minutes.
    # A courier app sends a batch every few seconds (about 100 per 5 minutes) and a
    # tracking page a handful; this leaves room for many people behind one carrier NAT.
    waf_requests_per_address_per_5_minutes: int = 3000
    # Optional: the only addresses (CIDRs, IPv4 and IPv6) the staff paths answer (waf.py's
    # STAFF_PATHS). Empty: no allow-list. `-c prod.staff_allowed_cidrs=203.0.113.0/24,...`
    staff_allowed_cidrs: tuple[str, ...] = ()

    # Alarms.
    alarm_email: str = "oncall-tracking@ze.delivery"
    # Optional: the complete ARN of a Secrets Manager secret holding the Sentry DSN (its value
    # the DSN alone); set it with `cdk deploy -c <stage>.sentry_dsn_secret_arn=arn:...`.
    sentry_dsn_secret_arn: str = ""
    queue_age_alarm_seconds: int = 120
    queue_depth_alarm: int = 5_000
    http_5xx_alarm_percent: float = 1.0
    # The slowest 1 % of web requests (nginx on the instances, EB enhanced health).
    web_latency_p99_alarm_seconds: float = 2.0
    db_cpu_alarm_percent: int = 80
    db_connections_alarm: int = 400
    # DMS reads the WAL continuously (source latency stays low) but applies to Redshift
    # in batches of up to 15 minutes (TASK_SETTINGS in analytics.py), so target latency
    # sits near 900 s when healthy.
    dms_source_lag_alarm_seconds: int = 300
    dms_target_lag_alarm_seconds: int = 1800
    log_retention_days: int = 30
    # Beat's shortest schedule is 60 s (the heartbeat, notifications resend): silence for
    # twice that alarms (ze_tracking/settings/celery.py CELERY_BEAT_SCHEDULE).
    beat_shortest_schedule_seconds: int = 60
    redis_memory_alarm_percent: int = 80
    # Data freshness (device time -> stored), p99, the app's own metric.
    freshness_alarm_seconds: int = 60

    tags: dict[str, str] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"{PROJECT}-{self.name}"


STAGES: dict[str, StageConfig] = {
    "dev": StageConfig(name="dev"),
    "prod": StageConfig(
        name="prod",
        vpc_cidr="10.41.0.0/16",
        nat_gateways=3,
        web_instance_type="c7g.large",
        web_min_instances=2,
        # What the cost model needs at 100x (100M pings/day) from the measured capacity, plus
        # room for a rolling deploy's extra instance (deploy/tests/test_cost.py checks it).
        web_max_instances=100,
        worker_instance_type="c7g.large",
        worker_min_instances=2,
        worker_max_instances=170,
        worker_concurrency=8,
        scheduler_instance_type="t4g.small",
        domain_name="tracking.ze.delivery",
        aurora_min_acu=2,
        aurora_max_acu=32,
        aurora_readers=1,
        backup_retention_days=14,
        deletion_protection=True,
        # Plenty for today's fan-out (tens of messages a second); m7g at 100x.
        redis_node_type="cache.t4g.medium",
        redis_replicas=1,
        dms_instance_class="dms.r6i.large",
        dms_allocated_storage_gb=100,
        dms_multi_az=True,
        redshift_base_rpu=32,
        log_retention_days=365,
    ),
}


def _parse(key: str, value: Any, type_: Any) -> Any:
    """A context value as the type of the field it overrides. Values from the command line
    (`-c prod.web_max_instances=12`) arrive as strings; values from cdk.json may be typed."""
    kind = typing.get_origin(type_) or type_
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            return {"true": True, "false": False}[str(value).lower()]
        if isinstance(value, bool):
            raise TypeError(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind is float:
            return float(value)
        if kind is tuple:
            return tuple(value) if isinstance(value, list) else tuple(str(value).split(","))
        if kind is dict:
            parsed = json.loads(value) if isinstance(value, str) else value
            if not isinstance(parsed, dict):
                raise TypeError(value)
            return {str(k): str(v) for k, v in parsed.items()}
        return str(value)
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(f"{key}: {value!r} is not a {kind.__name__} (deploy/ze_infra/config.py)") from error


def stage_config(name: str, context: dict[str, Any] | None = None) -> StageConfig:
    """The config of stage `name`, with its `<name>.<field>` context values applied.

    A key naming a stage but no field of StageConfig, the `name` field itself, or a value
    that is not of the field's type, stops synthesis: a typo would otherwise deploy the
    default without a word."""
    base = STAGES[name]
    types = typing.get_type_hints(StageConfig)
    fields = {f.name for f in dataclasses.fields(base)} - {"name"}
    overrides: dict[str, Any] = {}
    for key, value in (context or {}).items():
        stage, dot, field_name = key.partition(".")
        if not dot or stage != name:
            continue
        if field_name not in fields:
            raise ValueError(f"{key}: StageConfig has no field {field_name!r} (deploy/ze_infra/config.py)")
        overrides[field_name] = _parse(key, value, types[field_name])
    return dataclasses.replace(base, **overrides)
