from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from tracking.serializers import PingInputSerializer
from tracking.services.ingest import pings_ingest
from ze_tracking.api import IsCourier


class PingBatchCreateApi(APIView):
    """A courier's batch of GPS pings. Accepted pings are queued and stored by a worker;
    each rejected one is listed with its index and errors."""

    permission_classes = [IsCourier]

    class PingBatchInputSerializer(serializers.Serializer):
        # Items are validated one by one in the service, so one bad ping rejects only itself.
        pings = serializers.ListField(child=serializers.JSONField(), min_length=1, max_length=500)

    class PingBatchResultSerializer(serializers.Serializer):
        accepted = serializers.IntegerField()
        rejected = serializers.ListField(child=serializers.DictField())

    class PingBatchSerializer(serializers.Serializer):
        """What the schema documents: 1 to 500 pings."""

        pings = PingInputSerializer(many=True)

    @extend_schema(
        request=PingBatchSerializer, responses={202: PingBatchResultSerializer, 400: PingBatchResultSerializer}
    )
    def post(self, request):
        data = self.PingBatchInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = pings_ingest(courier_id=request.user.courier.id, pings=data.validated_data["pings"])
        body = {"accepted": result.accepted, "rejected": result.rejected}
        return Response(body, status=status.HTTP_202_ACCEPTED if result.accepted else status.HTTP_400_BAD_REQUEST)
