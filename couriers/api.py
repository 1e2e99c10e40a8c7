from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from couriers.models import Courier
from couriers.services import courier_create
from ze_tracking.api import IsStaff


class CourierOutputSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Courier
        fields = ["id", "name", "username"]


class CourierCreateApi(APIView):
    permission_classes = [IsStaff]

    class CourierCreateInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=120)
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(write_only=True)

        def validate_username(self, value):
            if get_user_model().objects.filter(username=value).exists():
                raise serializers.ValidationError("This username is taken.")
            return value

    @extend_schema(request=CourierCreateInputSerializer, responses={201: CourierOutputSerializer})
    def post(self, request):
        data = self.CourierCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            courier = courier_create(**data.validated_data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": exc.messages}) from exc
        return Response(CourierOutputSerializer(courier).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: CourierOutputSerializer(many=True)})
    def get(self, request):
        couriers = Courier.objects.select_related("user").order_by("name")[:1000]
        return Response(CourierOutputSerializer(couriers, many=True).data)
