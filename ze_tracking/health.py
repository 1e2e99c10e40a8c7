"""Liveness and readiness probes for the load balancer and operators."""

from __future__ import annotations

from django.db import connection
from django.http import JsonResponse
from django_redis import get_redis_connection

from ze_tracking.celery import app as celery_app


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    """200 only when the database, Redis and the broker answer; else 503 naming what failed."""
    failed = {}
    checks = {
        "database": lambda: connection.cursor().execute("SELECT 1"),
        "redis": lambda: get_redis_connection("default").ping(),
        "broker": _broker_check,
    }
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # any failure means not ready; the reason is reported
            failed[name] = str(exc)[:200] or exc.__class__.__name__
    if failed:
        return JsonResponse({"status": "unavailable", "failed": failed}, status=503)
    return JsonResponse({"status": "ok"})


def _broker_check() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
