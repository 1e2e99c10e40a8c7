"""The error answers every operation can give, added to the OpenAPI schema in one place
(drf-spectacular documents only what a view annotates): a client generated from the schema
then knows each status it may meet, and tests/test_api_fuzz.py holds the API to it.

Which errors an operation documents follows from how it is built: credentials are checked
(401), a permission can refuse (403), a path names an object (404), a body or a query is
validated (400), a throttle counts the requests (429, with Retry-After); any of them may
meet a dependency that cannot answer (503, with Retry-After: the database, or the Redis
that counts throttles and carries the batches).
All share one shape, DRF's: `{"detail": ...}` or field -> messages.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

if TYPE_CHECKING:
    from drf_spectacular.generators import SchemaGenerator

ERROR_SCHEMA = {
    "type": "object",
    "description": 'DRF\'s error shape: {"detail": "..."} or, for invalid input, field name -> messages.',
    "additionalProperties": {},
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
REASONS = {
    "400": "Invalid input; the body names each field at fault.",
    "401": "Missing or invalid credentials.",
    "403": "These credentials may not do this.",
    "404": "No such object, or not one these credentials may see.",
    "429": "Too many requests; retry after `Retry-After` seconds.",
    "503": "A dependency cannot answer now; nothing was stored. Retry after `Retry-After` seconds.",
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}}


def _error(description: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": ERROR_REF}}, "description": description}


def _refusing_permissions(view: APIView) -> bool:
    try:
        permissions = view.get_permissions()
    except Exception:  # noqa: BLE001 (a view that needs a real request to say: assume it can refuse)
        return True
    return any(not isinstance(p, AllowAny) for p in permissions)


def error_responses_document(
    result: dict[str, Any], generator: SchemaGenerator, request: HttpRequest | None, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    views: dict[tuple[str, str], APIView] = {}
    # drf-spectacular's endpoints are (path, regex, method, view), not DRF's typed triples.
    endpoints: list[tuple[str, str, str, Any]] = generator.endpoints  # type: ignore[assignment]
    for path, _, method, callback in endpoints:
        view = callback.cls(**getattr(callback, "initkwargs", {}))
        view.request = SimpleNamespace(method=method.upper())
        views[(path, method.lower())] = view
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            view = views.get((path, method))
            responses = operation.setdefault("responses", {})
            parameters = operation.get("parameters", [])
            statuses = []
            if "requestBody" in operation or any(p["in"] == "query" for p in parameters):
                statuses.append("400")
            if operation.get("security", [{}]) != [{}] and (view is None or view.get_authenticators()):
                statuses.append("401")
            if view is None or _refusing_permissions(view):
                statuses.append("403")
            if any(p["in"] == "path" for p in parameters):
                statuses.append("404")
            if view is not None and view.get_throttles():
                statuses.append("429")
            statuses.append("503")
            for status in statuses:
                documented = responses.get(status)
                if documented is None:
                    responses[status] = _error(REASONS[status])
                elif "content" in documented:
                    # A view's own error body (per-ping rejections) or DRF's for a malformed request.
                    schema = documented["content"]["application/json"]["schema"]
                    if schema != ERROR_REF and "anyOf" not in schema:
                        documented["content"]["application/json"]["schema"] = {"anyOf": [schema, ERROR_REF]}
                else:
                    documented["content"] = _error("")["content"]
            for status, documented in responses.items():
                # Errors a view names without a body shape (404, 409, 429) have DRF's.
                if status >= "400" and "content" not in documented:
                    documented["content"] = _error("")["content"]
            for status in ("429", "503"):
                if status in responses:
                    responses[status].setdefault("headers", RETRY_AFTER)
            operation["responses"] = dict(sorted(responses.items()))
    return result


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """URLs that match no route: JSON under /api/ (where the clients read JSON), Django's
    page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
