"""The naive baseline: how a tutorial would ingest pings. Per ping, in the request: one
ModelSerializer save and one `update_or_create` of the order's last location. Measured by
the same load generator as the product, against the same PostgreSQL, so the product's
speed-up is read side by side with it."""

from __future__ import annotations

from django.contrib.gis.geos import Point
from django.utils import timezone
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import Order, OrderStatus
from tracking.models import OrderLastLocation, Ping


class NaivePingSerializer(serializers.ModelSerializer):
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lon = serializers.FloatField(min_value=-180, max_value=180)

    class Meta:
        model = Ping
        fields = ["event_id", "recorded_at", "lat", "lon", "accuracy_m", "speed_mps", "heading_deg"]


class NaivePingBatchCreateApi(APIView):
    permission_classes = [IsAuthenticated]

    def post(self, request: Request) -> Response:
        courier = request.user.courier
        order = Order.objects.filter(courier=courier, status=OrderStatus.IN_TRANSIT).first()
        for raw in request.data.get("pings", []):
            serializer = NaivePingSerializer(data=raw)
            serializer.is_valid(raise_exception=True)
            ping = serializer.save(courier=courier, order=order, received_at=timezone.now())
            if order is not None:
                OrderLastLocation.objects.update_or_create(
                    order=order,
                    defaults={
                        "courier": courier,
                        "location": Point(ping.lon, ping.lat, srid=4326),
                        "accuracy_m": ping.accuracy_m,
                        "speed_mps": ping.speed_mps,
                        "heading_deg": ping.heading_deg,
                        "recorded_at": ping.recorded_at,
                        "updated_at": timezone.now(),
                    },
                )
        return Response({"accepted": len(request.data.get("pings", []))}, status=status.HTTP_201_CREATED)
