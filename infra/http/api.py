"""Cross-app API plumbing: permissions, pagination and the error shape."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from rest_framework import exceptions, permissions, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class Pagination(LimitOffsetPagination):
    """Every list: `?limit=&offset=`, never more than API_PAGE_MAX items a page."""

    # Properties, not attributes, so the settings are read at each request.
    @property
    def default_limit(self) -> int:  # type: ignore[override]
        limit: int = settings.API_PAGE_DEFAULT
        return limit

    @property
    def max_limit(self) -> int:  # type: ignore[override]
        limit: int = settings.API_PAGE_MAX
        return limit


class FirstRendererNegotiation(DefaultContentNegotiation):
    """For the hot routes, which render JSON only: DRF's negotiation reads the query string
    and parses Accept on every request (half of DRF's own time on a short read) to refuse,
    with a 406, a client that asks for something else; such a client gets JSON, as HTTP
    allows. Request bodies are still matched to their Content-Type (415 otherwise)."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        first = next(iter(renderers))
        return first, first.media_type


class IsCourier(permissions.BasePermission):
    message = "Only couriers can do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated and hasattr(request.user, "courier"))


class HasPerms(permissions.BasePermission):
    """The Django permissions the view names for the request's method (`required_perms`,
    HEAD and OPTIONS as GET), held by the user or its groups (the backoffice roles);
    superusers hold every one. A method the view names none for is refused."""

    message = "You do not have permission to do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        perms = getattr(view, "required_perms", {}).get(method)
        user = request.user
        return bool(perms and user and user.is_authenticated and user.has_perms(perms))


class IsCourierOrHasPerms(permissions.BasePermission):
    message = "Only couriers and the backoffice roles that may read this can do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return IsCourier().has_permission(request, view) or HasPerms().has_permission(request, view)


class ServiceUnavailable(Exception):
    """A dependency (the broker) cannot take the request now; nothing was stored. 503."""

    detail = "This cannot be done right now; nothing was stored. Retry later."
    retry_after_s = 5


class PayloadTooLarge(Exception):
    """What the request asks to queue does not fit in one message. 413."""


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."
    default_code = "conflict"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus: bodies over DATA_UPLOAD_MAX_MEMORY_SIZE are 413 (Django would
    answer 400), and a dependency that cannot take the request is 503 with Retry-After. The
    apps raise subclasses of the base exceptions above, so this module imports no app."""
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "Request body is larger than 1 MiB."}, status=413)
    if isinstance(exc, PayloadTooLarge):
        return Response({"detail": str(exc)}, status=413)
    if isinstance(exc, ServiceUnavailable):
        return Response({"detail": exc.detail}, status=503, headers={"Retry-After": str(exc.retry_after_s)})
    if isinstance(exc, OperationalError | InterfaceError):
        # The database cannot answer (down, failing over, out of connections): the client
        # retries later. What failed, and where, goes to the log, never to the client. (Redis
        # out is the throttles' ThrottleUnavailable, a ServiceUnavailable: above.)
        logger.warning("database unavailable for %s: %r", context["request"].path, exc)
        return Response(
            {"detail": "The service is unavailable right now; nothing was stored. Retry later."},
            status=503,
            headers={"Retry-After": str(ServiceUnavailable.retry_after_s)},
        )
    return drf_exception_handler(exc, context)
