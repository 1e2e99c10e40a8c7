"""Cross-app API plumbing: permissions and the error shape."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, parsers, permissions, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ze_tracking.parsers import JSONParser


class TokenCreateApi(ObtainAuthToken):
    """`POST /api/v1/auth/token`: DRF's login, with the project's JSON parser."""

    parser_classes = [JSONParser, parsers.FormParser]


class IsCourier(permissions.BasePermission):
    message = "Only couriers can do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and hasattr(request.user, "courier"))


class IsStaff(permissions.BasePermission):
    message = "Only staff can do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class IsStaffOrCourier(permissions.BasePermission):
    message = "Only staff and couriers can do this."

    def has_permission(self, request, view) -> bool:
        return IsStaff().has_permission(request, view) or IsCourier().has_permission(request, view)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."
    default_code = "conflict"


def exception_handler(exc, context):
    """DRF's handler, plus: bodies over DATA_UPLOAD_MAX_MEMORY_SIZE are 413 (Django would
    answer 400), and a broker that cannot take a batch is 503 with Retry-After."""
    from tracking.services.ingest import BatchTooLarge, BrokerUnavailable

    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "Request body is larger than 1 MiB."}, status=413)
    if isinstance(exc, BatchTooLarge):
        return Response({"detail": str(exc)}, status=413)
    if isinstance(exc, BrokerUnavailable):
        return Response(
            {"detail": "Locations cannot be queued right now; nothing was stored. Retry later."},
            status=503,
            headers={"Retry-After": "5"},
        )
    return drf_exception_handler(exc, context)
