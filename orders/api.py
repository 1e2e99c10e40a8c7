from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from couriers.serializers import CourierRefSerializer
from infra.http.api import Conflict, HasPerms, IsCourier, IsCourierOrHasPerms, Pagination
from infra.http.serializers import EventLocationInputSerializer, PointInputSerializer, RecordedAtField
from orders.models import NotificationStatus, Order, OrderEventType, OrderStatus
from orders.selectors import order_get_for, order_notifications_list, orders_visible_to
from orders.services import EventIdReused, TransitionNotAllowed, order_cancel, order_create, order_transition

# What a courier sees of an order it may take but does not carry: enough to decide to take
# it (where, roughly; since when), not who the consumer is or the exact address.
OFFER_FIELDS = ("id", "status", "destination_area", "created_at")
HIDDEN_FROM_COURIER = "Null for a courier who does not carry the order, and an hour (a setting) after it ended."
# What the courier keeps of an order it carried once COURIER_ORDER_DETAIL_AFTER_END_S have
# passed since it ended: its own record of the job, without the consumer.
FINISHED_FIELDS = (*OFFER_FIELDS, "courier", "assigned_at", "started_at", "delivered_at", "cancelled_at")
# Rounded to 0.01°: about 1.1 km north-south in São Paulo, a neighbourhood, not a door.
AREA_DECIMALS = 2


class OrderOutputSerializer(serializers.ModelSerializer):
    """The backoffice (orders.view_order) sees everything. The courier carrying the order
    sees all but the tracking code (the consumer's secret), and `FINISHED_FIELDS` only once
    COURIER_ORDER_DETAIL_AFTER_END_S have passed since it ended; another courier sees a
    pending order's `OFFER_FIELDS` only. The fields a caller may not see are null."""

    destination = serializers.SerializerMethodField(help_text=HIDDEN_FROM_COURIER)
    destination_area = serializers.SerializerMethodField()
    courier = CourierRefSerializer(allow_null=True)
    # Not read-only, so that the schema does not list it as always present: only staff see it.
    tracking_code = serializers.CharField(required=False, help_text="Staff only: the consumer's tracking code.")

    class Meta:
        model = Order
        fields = [
            "id", "external_id", "status", "tracking_code", "consumer_name", "destination", "destination_area",
            "courier", "created_at", "assigned_at", "started_at", "delivered_at", "cancelled_at",
        ]  # fmt: skip
        extra_kwargs = {
            "external_id": {"allow_null": True},
            "consumer_name": {"allow_null": True, "help_text": HIDDEN_FROM_COURIER},
        }

    def get_destination(self, order) -> dict | None:
        return order.destination_latlon

    def get_destination_area(self, order) -> dict:
        return {k: round(v, AREA_DECIMALS) for k, v in order.destination_latlon.items()}

    def to_representation(self, order):
        data = super().to_representation(order)
        request = self.context.get("request")
        if request and request.user.has_perm("orders.view_order"):
            return data
        data.pop("tracking_code")  # the consumer's secret, not the courier's business
        courier = getattr(request.user, "courier", None) if request else None
        if courier is None or order.courier_id != courier.id:
            data.update({field: None for field in data if field not in OFFER_FIELDS})
        elif order_detail_expired(order):
            data.update({field: None for field in data if field not in FINISHED_FIELDS})
        return data


def order_detail_expired(order) -> bool:
    ended = order.trail_ends_at
    window = dt.timedelta(seconds=settings.COURIER_ORDER_DETAIL_AFTER_END_S)
    return ended is not None and ended <= timezone.now() - window


class OrderPageSerializer(serializers.Serializer):
    """One page of orders, as LimitOffsetPagination answers it."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = OrderOutputSerializer(many=True)


def transition_conflict(exc: TransitionNotAllowed) -> Conflict:
    return Conflict({"detail": str(exc), "status": exc.current_status})


class OrderCreateListApi(APIView):
    pagination_class = Pagination
    # Orders come from the order system, whose account holds orders.add_order.
    required_perms = {"GET": ["orders.view_order"], "POST": ["orders.add_order"]}

    def get_permissions(self):
        return [HasPerms()] if self.request.method == "POST" else [IsCourierOrHasPerms()]

    class OrderCreateInputSerializer(serializers.Serializer):
        consumer_name = serializers.CharField(max_length=120)
        destination = PointInputSerializer()
        external_id = serializers.CharField(max_length=64, required=False, allow_null=True)

    @extend_schema(
        request=OrderCreateInputSerializer,
        responses={
            201: OrderOutputSerializer,
            409: OpenApiResponse(description="An order with this external_id exists; the body names it."),
        },
    )
    def post(self, request):
        data = self.OrderCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            order = order_create(
                consumer_name=values["consumer_name"],
                lat=values["destination"]["lat"],
                lon=values["destination"]["lon"],
                external_id=values.get("external_id"),
            )
        except IntegrityError as exc:
            existing = Order.objects.filter(external_id=values.get("external_id")).values_list("id", flat=True).first()
            raise Conflict({"detail": "An order with this external_id exists.", "order_id": str(existing)}) from exc
        return Response(OrderOutputSerializer(order, context={"request": request}).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        # A page object rather than a list: spectacular would name it a retrieve.
        operation_id="v1_orders_list",
        description="The backoffice's: every order. A courier's: its own and the pending ones, "
        "created in the last COURIER_ORDERS_MAX_AGE_DAYS (7 by default).",
        parameters=[
            OpenApiParameter("status", enum=OrderStatus.values),
            OpenApiParameter("limit", int, description="Orders per page (100 by default)."),
            OpenApiParameter("offset", int, description="Orders to skip."),
        ],
        responses={200: OrderPageSerializer},
    )
    def get(self, request):
        orders = orders_visible_to(user=request.user).order_by("-created_at")
        if request.query_params.get("status"):
            if request.query_params["status"] not in OrderStatus.values:
                raise serializers.ValidationError({"status": [f"Must be one of {', '.join(OrderStatus.values)}."]})
            orders = orders.filter(status=request.query_params["status"])
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(
            OrderOutputSerializer(page, many=True, context={"request": request}).data
        )


class OrderGetApi(APIView):
    permission_classes = [IsCourierOrHasPerms]
    required_perms = {"GET": ["orders.view_order"]}

    @extend_schema(responses={200: OrderOutputSerializer})
    def get(self, request, order_id):
        order = order_get_for(user=request.user, order_id=order_id, include_pending=True)
        return Response(OrderOutputSerializer(order, context={"request": request}).data)


class OrderEventCreateApi(APIView):
    permission_classes = [IsCourier]

    class OrderEventInputSerializer(serializers.Serializer):
        type = serializers.ChoiceField(
            choices=[OrderEventType.ASSIGNED, OrderEventType.STARTED, OrderEventType.DELIVERED]
        )
        event_id = serializers.UUIDField()
        recorded_at = RecordedAtField()
        location = EventLocationInputSerializer()

    class OrderEventOutputSerializer(serializers.Serializer):
        event_id = serializers.UUIDField()
        order_id = serializers.UUIDField()
        type = serializers.CharField()
        status = serializers.CharField(source="status_after")
        recorded_at = serializers.DateTimeField()

    @extend_schema(
        request=OrderEventInputSerializer,
        responses={
            201: OrderEventOutputSerializer,
            409: OpenApiResponse(description="The status does not allow this action, or the event id was used."),
        },
    )
    def post(self, request, order_id):
        # Another courier's order is 404 before the body is even read.
        order_get_for(user=request.user, order_id=order_id, include_pending=True)
        data = self.OrderEventInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            result = order_transition(
                order_id=order_id,
                courier=request.user.courier,
                event_type=values["type"],
                event_id=values["event_id"],
                recorded_at=values["recorded_at"],
                lat=values["location"]["lat"],
                lon=values["location"]["lon"],
                accuracy_m=values["location"].get("accuracy_m"),
            )
        except TransitionNotAllowed as exc:
            raise transition_conflict(exc) from exc
        except EventIdReused as exc:
            raise Conflict({"detail": str(exc)}) from exc
        return Response(self.OrderEventOutputSerializer(result.event).data, status=status.HTTP_201_CREATED)


class OrderCancelApi(APIView):
    permission_classes = [HasPerms]
    required_perms = {"POST": ["orders.cancel_order"]}

    @extend_schema(
        request=None,
        responses={
            200: OrderOutputSerializer,
            409: OpenApiResponse(description="The order's status does not allow it; the body says which it is."),
        },
    )
    def post(self, request, order_id):
        order_get_for(user=request.user, order_id=order_id)
        try:
            order = order_cancel(order_id=order_id)
        except TransitionNotAllowed as exc:
            raise transition_conflict(exc) from exc
        return Response(OrderOutputSerializer(order, context={"request": request}).data)


class NotificationOutputSerializer(serializers.Serializer):
    kind = serializers.CharField()
    status = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    attempts = serializers.IntegerField()
    error = serializers.CharField()

    def get_status(self, notification) -> str:
        # A row a worker is sending right now is still pending for the reader.
        return NotificationStatus.PENDING if notification.status == NotificationStatus.SENDING else notification.status


class OrderNotificationListApi(APIView):
    permission_classes = [HasPerms]
    required_perms = {"GET": ["orders.view_order", "orders.view_notification"]}

    @extend_schema(responses={200: NotificationOutputSerializer(many=True)})
    def get(self, request, order_id):
        order = order_get_for(user=request.user, order_id=order_id)
        return Response(NotificationOutputSerializer(order_notifications_list(order=order), many=True).data)
