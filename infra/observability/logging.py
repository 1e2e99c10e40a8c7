"""JSON logs that say which request, courier and task a line belongs to, and the optional
Sentry hook.

Every log record gets `request_id`, `courier_id` and `task_id` (None when unknown) from
context variables, so they follow a request through sync and async code alike:
- `RequestIdMiddleware` binds the request id (the caller's `X-Request-ID` when it is a
  plausible id, else a new one) and echoes it in the response;
- Celery's `task_prerun` binds the task id and, when the task has one, its `courier_id`;
- services bind the courier they act for with `log_context_bind(courier_id=...)`.

python-json-logger renders the record: https://nhairs.github.io/python-json-logger/
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from celery.signals import task_postrun, task_prerun
from django.http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_courier_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("courier_id", default=None)
_task_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)

access_log = logging.getLogger("ze_tracking.request")

# A caller's id is echoed into our logs: accept only short, plain tokens (no log forging).
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def log_context_bind(*, courier_id: object) -> None:
    """Tag the rest of this request's or task's log lines with the courier it acts for."""
    _courier_id.set(str(courier_id) if courier_id is not None else None)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        record.courier_id = _courier_id.get()
        record.task_id = _task_id.get()
        return True


class RequestIdMiddleware:
    """Binds a request id for the request's log lines, returns it as X-Request-ID and
    writes one access line per request (uvicorn's own access log is off). Sync and async
    capable, so it costs no thread hop under ASGI."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    @staticmethod
    def _log(request: HttpRequest, response: HttpResponse, started: float) -> None:
        # The URL pattern, never the path: tracking links carry their secret code in it.
        match = getattr(request, "resolver_match", None)
        access_log.info(
            "%s %s %s",
            request.method,
            match.route if match else "(unresolved)",
            response.status_code,
            extra={
                "method": request.method,
                "route": match.route if match else None,
                "status": response.status_code,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )

    def _bind(self, request: HttpRequest) -> tuple[str, list[contextvars.Token[str | None]]]:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]  # for the request's handlers
        return request_id, [_request_id.set(request_id), _courier_id.set(None)]

    @staticmethod
    def _unbind(tokens: list[contextvars.Token[str | None]]) -> None:
        _request_id.reset(tokens[0])
        _courier_id.reset(tokens[1])

    # The response, or under ASGI an awaitable of it.
    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        started = time.monotonic()
        request_id, tokens = self._bind(request)
        try:
            response = self.get_response(request)
            self._log(request, response, started)
        finally:
            self._unbind(tokens)
        response["X-Request-ID"] = request_id
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        request_id, tokens = self._bind(request)
        try:
            response: HttpResponse = await self.get_response(request)
            self._log(request, response, started)
        finally:
            self._unbind(tokens)
        response["X-Request-ID"] = request_id
        return response


# Celery ships no types: its signals' decorators are untyped.
@task_prerun.connect  # type: ignore[untyped-decorator]
def _task_bind(task_id: str | None = None, kwargs: dict[str, Any] | None = None, **_: Any) -> None:
    _task_id.set(task_id)
    courier_id = (kwargs or {}).get("courier_id")
    _courier_id.set(str(courier_id) if courier_id else None)


@task_postrun.connect  # type: ignore[untyped-decorator]
def _task_unbind(**_: Any) -> None:
    _task_id.set(None)
    _courier_id.set(None)


def logging_config(*, level: str, json_path: str = "") -> dict[str, Any]:
    """Django's LOGGING: every line one JSON object, with the context ids, on stderr, or
    appended to `json_path` when set (deploy/ sets it: on Elastic Beanstalk stdout reaches
    CloudWatch behind a syslog prefix, so the CloudWatch agent ships this file instead)."""
    handler = (
        # WatchedFileHandler: reopens the file after logrotate moves it.
        {"class": "logging.handlers.WatchedFileHandler", "filename": json_path}
        if json_path
        else {"class": "logging.StreamHandler"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "format": "%(levelname)s %(name)s %(message)s",
                "rename_fields": {"levelname": "level", "name": "logger"},
                # ISO 8601 in UTC under "time", whatever TIME_ZONE says.
                "timestamp": "time",
            }
        },
        "handlers": {"console": {**handler, "formatter": "json", "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
        # Django's own 4xx warnings repeat the access line with the raw path, which for a
        # tracking link holds its secret code; 5xx errors (with tracebacks) stay.
        "loggers": {
            "django.request": {"level": "ERROR"},
            # uvicorn configures its loggers with its own text handler before Django starts.
            "uvicorn": {"handlers": ["console"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["console"], "level": level, "propagate": False},
            # RequestIdMiddleware writes the access line, with the route instead of the raw
            # path (tracking links carry their secret code in it).
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


# A tracking link's secret code in a URL: /t/<code>, /api/v1/track/<code>, /ws/track/<code>/.
TRACKING_CODE_IN_URL_RE = re.compile(r"/(t|api/v1/track|ws/track)/[^/?#\s]+")


def sentry_event_scrub(event: Event, hint: Hint) -> Event:
    """Sentry's `before_send`: the request's URL names the route instead of a tracking code,
    and the Referer (the tracking page's URL) is dropped."""
    request = event.get("request") or {}
    if isinstance(url := request.get("url"), str):
        request["url"] = TRACKING_CODE_IN_URL_RE.sub(r"/\1/:code", url)
    headers = request.get("headers")
    if isinstance(headers, dict):  # Sentry's request headers: name -> value
        for name in [n for n in headers if n.lower() == "referer"]:
            del headers[name]
    return event


def sentry_init(*, dsn: str, environment: str, traces_sample_rate: float) -> None:
    """Error tracking, only when a DSN is configured (the Django and Celery integrations
    switch themselves on). No personal data: couriers' positions and tracking codes stay
    out of Sentry (transactions are named by route)."""
    if not dsn:
        return
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        before_send=sentry_event_scrub,
    )
