"""Application metrics, one call site per event, two exports:

- **Prometheus** (`/metrics`, local and tests): counters and histograms from
  prometheus-client. With `PROMETHEUS_MULTIPROC_DIR` set (scripts/run.sh sets it) every
  process, uvicorn worker or Celery child, writes its values to files there and `/metrics`
  adds them up, so the web shows what the workers did.
  https://prometheus.github.io/client_python/multiprocess/
- **CloudWatch embedded metric format** (production): with `METRICS_EMF_PATH` set (deploy/
  sets it on every environment) each event is also one JSON line in that file; the
  CloudWatch agent ships it and CloudWatch turns it into metrics of namespace
  `METRICS_NAMESPACE`, dimension `Stage`. No API call on the hot path, no scraper to run
  in the VPC. https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

`/metrics` answers staff users (session) and callers with `Authorization: Bearer
<METRICS_TOKEN>` when that token is set; everyone else gets 403. The numbers say how
busy the service is, which is not for the public.
"""

from __future__ import annotations

import hmac
import json
import logging
import logging.handlers
import os
import time
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

# Engineers' (tracking/migrations/0010_roles.py). A permission needs a model: this one is
# declared on tracking's pings; a string here, so the platform imports no app.
METRICS_PERMISSION = "tracking.view_metrics"
SECONDS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)


@dataclass(frozen=True)
class Metric:
    prometheus: Counter | Histogram
    unit: str  # CloudWatch unit


METRICS: dict[str, Metric] = {
    "PingsAccepted": Metric(Counter("ze_pings_accepted", "Pings accepted by the ingest API"), "Count"),
    "PingsRejected": Metric(Counter("ze_pings_rejected", "Pings rejected by the ingest API"), "Count"),
    "PingsDeadLettered": Metric(
        Counter("ze_pings_dead_lettered", "Accepted pings the database refused, kept as dead letters"), "Count"
    ),
    "BatchLatency": Metric(
        Histogram("ze_ping_batch_latency_seconds", "Time a worker takes to record a batch", buckets=SECONDS_BUCKETS),
        "Seconds",
    ),
    "QueueLag": Metric(
        Histogram("ze_ping_batch_queue_lag_seconds", "Age of a batch when a worker picks it", buckets=SECONDS_BUCKETS),
        "Seconds",
    ),
    "Freshness": Metric(
        Histogram(
            "ze_ping_freshness_seconds", "Device time of a ping to the time it is stored", buckets=SECONDS_BUCKETS
        ),
        "Seconds",
    ),
    "NotificationsSent": Metric(Counter("ze_notifications_sent", "Consumer notifications delivered"), "Count"),
    "NotificationsFailed": Metric(
        Counter("ze_notifications_failed", "Consumer notification attempts that failed"), "Count"
    ),
    "BeatHeartbeat": Metric(Counter("ze_beat_heartbeats", "Heartbeats scheduled by beat and run by a worker"), "Count"),
}

_emf = logging.getLogger("ze_tracking.metrics.emf")
_emf.propagate = False


_emf_handler: logging.handlers.WatchedFileHandler | None = None


def _emf_handler_ensure() -> bool:
    global _emf_handler
    path = os.environ.get("METRICS_EMF_PATH", "")
    if not path:
        return False
    if _emf_handler is None or _emf_handler.baseFilename != os.path.abspath(path):
        if _emf_handler is not None:
            _emf.removeHandler(_emf_handler)
            _emf_handler.close()
        # WatchedFileHandler: reopens the file after logrotate moves it.
        _emf_handler = logging.handlers.WatchedFileHandler(path)
        _emf_handler.setFormatter(logging.Formatter("%(message)s"))
        _emf.addHandler(_emf_handler)
        _emf.setLevel(logging.INFO)
    return True


def metric_record(*, name: str, value: float | list[float] = 1.0) -> None:
    """Count (counters) or observe (histograms) `value`; a list records each value."""
    metric = METRICS[name]
    values = value if isinstance(value, list) else [value]
    if not values:
        return
    if isinstance(metric.prometheus, Counter):
        metric.prometheus.inc(sum(values))
    else:
        for v in values:
            metric.prometheus.observe(v)
    if _emf_handler_ensure():
        for line in emf_lines(
            name=name, values=values, unit=metric.unit, counter=isinstance(metric.prometheus, Counter)
        ):
            _emf.info(line)


# EMF accepts at most 100 values per metric in one document.
EMF_MAX_VALUES = 100


def emf_lines(*, name: str, values: list[float], unit: str, counter: bool) -> list[str]:
    """EMF documents for one event. A counter sends its sum in one; a histogram sends every
    value, 100 per document, so CloudWatch computes percentiles over single events."""
    if counter:
        return [_emf_document(name=name, value=sum(values), unit=unit)]
    return [
        _emf_document(name=name, value=values[i : i + EMF_MAX_VALUES], unit=unit)
        for i in range(0, len(values), EMF_MAX_VALUES)
    ]


def _emf_document(*, name: str, value: float | list[float], unit: str) -> str:
    stage = os.environ.get("METRICS_STAGE", "local")
    return json.dumps(
        {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": os.environ.get("METRICS_NAMESPACE", "ZeTracking"),
                        "Dimensions": [["Stage"]],
                        "Metrics": [{"Name": name, "Unit": unit}],
                    }
                ],
            },
            "Stage": stage,
            name: value,
        },
        separators=(",", ":"),
    )


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode()):
        return True
    user = getattr(request, "user", None)
    return bool(user and user.is_active and user.has_perm(METRICS_PERMISSION))


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of this process, or of all processes in multiprocess mode."""
    if not _allowed(request):
        return HttpResponse("Engineers or the metrics token only.\n", status=403, content_type="text/plain")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated in prometheus_client
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
