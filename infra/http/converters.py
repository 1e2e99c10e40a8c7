"""URL converters shared by HTTP and websocket routes."""

from __future__ import annotations

from django.urls import register_converter


class TrackingCodeConverter:
    """Tracking codes are URL-safe base64 (`orders.models.tracking_code_new`): anything else
    is a 404 at routing, before a query."""

    regex = r"[A-Za-z0-9_-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


TRACKING_CODE = "tracking_code"
register_converter(TrackingCodeConverter, TRACKING_CODE)
