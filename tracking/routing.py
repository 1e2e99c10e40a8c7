from __future__ import annotations

from django.urls import path

from infra.http.converters import TRACKING_CODE  # noqa: F401 (registers the converter)
from tracking.consumers import FleetConsumer, TrackConsumer

websocket_urlpatterns = [
    path("ws/fleet/", FleetConsumer.as_asgi()),
    path("ws/track/<tracking_code:tracking_code>/", TrackConsumer.as_asgi()),
]
