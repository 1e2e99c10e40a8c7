"""The product's URLs plus two bench-only endpoints, never mounted by the product itself."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from bench.naive.api import NaivePingBatchCreateApi
from ze_tracking.urls import urlpatterns as product_urlpatterns


def bare_json(request: HttpRequest) -> JsonResponse:
    """The floor for any Django view on this server: no auth, no database, a tiny body."""
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/bare", bare_json, name="bench-bare"),
    path("bench/naive/locations", NaivePingBatchCreateApi.as_view(), name="bench-naive-locations"),
    *product_urlpatterns,
]
