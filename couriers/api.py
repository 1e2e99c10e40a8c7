from __future__ import annotations

from django.contrib.auth import authenticate, get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import parsers, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from couriers.models import Courier
from couriers.services import api_token_create, courier_create, user_tokens_revoke
from couriers.staff_access import staff_otp_token_check
from infra.http.api import HasPerms, Pagination
from infra.http.parsers import JSONParser
from infra.http.serializers import TextField
from infra.http.throttles import LoginAddressThrottle, LoginUsernameThrottle, OneCallThrottles


class TokenCreateApi(OneCallThrottles, APIView):
    """Log in: a new token for this device. Send it as `Authorization: Token <token>`. It
    expires after a day without use (each use extends it) and after 30 days in any case;
    a new login from the same named `device` revokes that device's previous token. Staff
    send their one-time code as `otp_token`; their token ends 8 hours after login."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser, parsers.FormParser]
    throttle_classes = [LoginUsernameThrottle, LoginAddressThrottle]

    class TokenCreateInputSerializer(serializers.Serializer):
        username = TextField(max_length=150)
        password = TextField(max_length=4096, trim_whitespace=False, write_only=True)
        device = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
        # Staff only, when the second factor is required: a TOTP code or a recovery code.
        otp_token = serializers.CharField(max_length=16, required=False, default="", allow_blank=True)

    class TokenOutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        expiry = serializers.DateTimeField()

    @extend_schema(
        request=TokenCreateInputSerializer,
        responses={200: TokenOutputSerializer, 400: OpenApiResponse(description="Wrong credentials.")},
        auth=[],
    )
    def post(self, request):
        data = self.TokenCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        user = authenticate(request, username=values["username"], password=values["password"])
        if user is None:
            raise serializers.ValidationError({"non_field_errors": ["Unable to log in with provided credentials."]})
        if not staff_otp_token_check(user=user, token=values["otp_token"]):
            raise serializers.ValidationError({"otp_token": ["A valid one-time code is required."]})
        stored, token = api_token_create(user=user, device=values["device"])
        return Response(self.TokenOutputSerializer({"token": token, "expiry": stored.expiry}).data)


class TokenDeleteApi(APIView):
    """Log out this device: the token of this request stops working."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        if request.auth is not None:  # a browser session has no token to revoke
            request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenDeleteAllApi(APIView):
    """Log out everywhere: every token of this user stops working."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        user_tokens_revoke(user_id=request.user.id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CourierOutputSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Courier
        fields = ["id", "name", "username"]


class CourierCreateApi(APIView):
    permission_classes = [HasPerms]
    required_perms = {"GET": ["couriers.view_courier"], "POST": ["couriers.add_courier"]}
    pagination_class = Pagination

    class CourierCreateInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=120)
        username = TextField(max_length=150)
        password = TextField(write_only=True)

        def validate_username(self, value):
            """As Django's user creation form: NFKC-normalized, the model's validators (letters,
            digits and @.+-_), and taken if it differs from another only in case."""
            user_model = get_user_model()
            value = user_model.normalize_username(value)
            try:
                user_model._meta.get_field(user_model.USERNAME_FIELD).run_validators(value)
            except DjangoValidationError as exc:
                raise serializers.ValidationError(exc.messages) from exc
            if user_model.objects.filter(username__iexact=value).exists():
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
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(Courier.objects.select_related("user").order_by("name"), request, view=self)
        return paginator.get_paginated_response(CourierOutputSerializer(page, many=True).data)
