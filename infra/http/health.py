"""Liveness and readiness probes for the load balancer and operators."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import redis
from celery import current_app as celery_app  # the project's app (ze_tracking/celery.py)
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django_redis import get_redis_connection

from infra.observability.metrics import METRICS_PERMISSION

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """200 "ready" only when the database, Redis and the broker answer; else 503 "not
    ready". What failed, and why, goes to the log and to signed-in engineers only: the error
    text can name hosts and the database user.

    Each check reuses a pooled connection: the request's database connection (kept for
    CONN_MAX_AGE), django-redis's pool, and one small pool per broker URL."""
    failed: dict[str, str] = {}
    checks: dict[str, Callable[[], object]] = {
        "database": _database_check,
        "redis": lambda: get_redis_connection("default").ping(),
        "broker": _broker_check,
    }
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # any failure means not ready; the reason is logged
            failed[name] = str(exc)[:200] or exc.__class__.__name__
    if failed:
        logger.warning("not ready: %s", failed)
    body: dict[str, Any] = {"status": "not ready" if failed else "ready"}
    if failed and request.user.is_authenticated and request.user.has_perm(METRICS_PERMISSION):
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200)


def _database_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker_check() -> None:
    """A Redis broker answers a PING over the probe's own pooled client (never a channel of
    Celery's, which may be mid-command in another thread); another broker (SQS) gets a
    connection from Celery's pool."""
    url = celery_app.conf.broker_url  # CELERY_BROKER_URL from the environment first
    if url.startswith(("redis://", "rediss://")):
        _redis_client(url).ping()
        return
    with celery_app.pool.acquire(block=True, timeout=2) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


@functools.lru_cache(maxsize=4)
def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
