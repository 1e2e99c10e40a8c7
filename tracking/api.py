"""Tracking's REST API: the ping ingest, and the read side of positions (an order's last
location and trail, a courier's last location, the consumer's tracking link)."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.http.api import FirstRendererNegotiation, HasPerms, IsCourier, IsCourierOrHasPerms
from infra.http.parsers import ItemsJSONParser
from infra.http.renderers import JSONRenderer
from infra.http.throttles import (
    IngestCourierThrottle,
    OneCallThrottles,
    TrackingAddressThrottle,
    TrackingCodeThrottle,
)
from orders.selectors import order_get_for, order_is_visible_to
from tracking.order_location import order_location_get, order_location_payload, order_location_token_check
from tracking.rules import tracking_rules
from tracking.selectors import courier_with_location_get, order_trail_list
from tracking.serializers import (
    CourierLocationSerializer,
    OrderLocationSerializer,
    PingInputSerializer,
    order_track_geojson,
)
from tracking.services.ingest import pings_ingest
from tracking.tracking_link import PublicOrderStateSerializer, order_public_state_get


class PingBatchCreateApi(OneCallThrottles, APIView):
    """A courier's batch of GPS pings. Accepted pings are queued and stored by a worker;
    each rejected one is listed with its index and errors."""

    permission_classes = [IsCourier]
    parser_classes = [ItemsJSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FirstRendererNegotiation
    throttle_classes = [IngestCourierThrottle]

    class PingBatchInputSerializer(serializers.Serializer):
        # Items are validated one by one in the service, so one bad ping rejects only itself.
        pings = serializers.ListField(child=serializers.JSONField(allow_null=True), min_length=1)

        def validate_pings(self, pings: list) -> list:
            limit = tracking_rules().max_batch_pings
            if len(pings) > limit:
                raise serializers.ValidationError(f"Ensure this field has no more than {limit} elements.")
            return pings

    class PingBatchResultSerializer(serializers.Serializer):
        accepted = serializers.IntegerField()
        rejected = serializers.ListField(child=serializers.DictField())

    class PingBatchSerializer(serializers.Serializer):
        """What the schema documents: 1 to 500 pings."""

        pings = PingInputSerializer(many=True)

    @extend_schema(
        request=PingBatchSerializer,
        responses={202: PingBatchResultSerializer, 400: PingBatchResultSerializer},
    )
    def post(self, request):
        data = self.PingBatchInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = pings_ingest(courier_id=request.user.courier.id, pings=data.validated_data["pings"])
        body = {"accepted": result.accepted, "rejected": result.rejected}
        return Response(body, status=status.HTTP_202_ACCEPTED if result.accepted else status.HTTP_400_BAD_REQUEST)


# Polled by every courier app and the backoffice: the order is read in the statement of the
# token check (tracking/order_location.py). A comment, not a docstring: the docstring would
# become the schema's description.
class OrderLocationGetApi(APIView):
    permission_classes = [IsCourierOrHasPerms]
    required_perms = {"GET": ["orders.view_order"]}
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FirstRendererNegotiation

    def initial(self, request, *args, **kwargs):
        # Before DRF's authentication, which then finds the request authenticated by a token.
        self.read = order_location_token_check(request, order_id=kwargs["order_id"])
        super().initial(request, *args, **kwargs)

    @extend_schema(responses={200: OrderLocationSerializer})
    def get(self, request, order_id):
        row = self.read.row if self.read else order_location_get(order_id=order_id)
        if row is None or not order_is_visible_to(user=request.user, courier_id=row.courier_id, status=row.status):
            raise Http404("No such order.")
        return Response(order_location_payload(row))


class OrderTrackGetApi(APIView):
    permission_classes = [HasPerms]
    required_perms = {"GET": ["orders.view_order"]}

    @extend_schema(
        responses={
            200: inline_serializer("OrderTrack", {"type": serializers.CharField(), "features": serializers.ListField()})
        }
    )
    def get(self, request, order_id):
        order = order_get_for(user=request.user, order_id=order_id)
        return Response(order_track_geojson(order=order, trail=order_trail_list(order=order)))


class CourierLocationGetApi(APIView):
    permission_classes = [HasPerms]
    required_perms = {"GET": ["couriers.view_courier"]}

    @extend_schema(responses={200: CourierLocationSerializer})
    def get(self, request, courier_id):
        return Response(CourierLocationSerializer(courier_with_location_get(courier_id=courier_id)).data)


class TrackingLinkGetApi(OneCallThrottles, APIView):
    """No login: the tracking code is the consumer's secret."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [TrackingCodeThrottle, TrackingAddressThrottle]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FirstRendererNegotiation
    output = PublicOrderStateSerializer()  # one for every request, as OrderLocationGetApi's

    @extend_schema(
        responses={
            200: PublicOrderStateSerializer,
            404: OpenApiResponse(description="Unknown tracking code."),
        },
        auth=[],
    )
    def get(self, request, tracking_code):
        state = order_public_state_get(tracking_code=tracking_code)
        if state is None:
            raise Http404("No such order.")
        return Response(self.output.to_representation(state), headers={"Cache-Control": "no-store"})
