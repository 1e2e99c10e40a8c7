from __future__ import annotations

from django.urls import path

from tracking.consumers import FleetConsumer, TrackConsumer

websocket_urlpatterns = [
    path("ws/fleet/", FleetConsumer.as_asgi()),
    path("ws/track/<str:tracking_code>/", TrackConsumer.as_asgi()),
]
