from __future__ import annotations

from django.contrib import admin, messages

from orders.models import Notification, NotificationStatus, Order, OrderEvent
from orders.notifications import notifications_enqueue
from orders.services import TransitionNotAllowed, order_cancel


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    # A tuple: one value for both, which the stubs type apart.
    fields = readonly_fields = (
        "type",
        "status_after",
        "courier",
        "recorded_at",
        "received_at",
        "location",
        "accuracy_m",
    )
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class NotificationInline(admin.TabularInline):
    model = Notification
    # A tuple: one value for both, which the stubs type apart.
    fields = readonly_fields = ("kind", "status", "attempts", "created_at", "sent_at", "error")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "external_id", "consumer_name", "status", "courier", "created_at"]
    list_filter = ["status", ("created_at", admin.DateFieldListFilter)]
    # Exact matches only on the unique/indexed keys; name search on the courier's index.
    search_fields = ["=id", "=tracking_code", "=external_id", "courier__name"]
    list_select_related = ["courier"]
    raw_id_fields = ["courier"]
    readonly_fields = [
        "id", "tracking_code", "status", "courier", "destination_text",
        "created_at", "assigned_at", "started_at", "delivered_at", "cancelled_at",
    ]  # fmt: skip
    fields = ["consumer_name", "external_id", *readonly_fields]
    inlines = [OrderEventInline, NotificationInline]
    actions = ["cancel_orders"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False  # orders come from the order system through the API

    @admin.display(description="destination")
    def destination_text(self, order):
        return f"{order.destination.y:.6f}, {order.destination.x:.6f}"

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("orders.cancel_order")

    @admin.action(description="Cancel selected orders", permissions=["cancel"])
    def cancel_orders(self, request, queryset):
        done = 0
        for order_id in queryset.values_list("id", flat=True):
            try:
                order_cancel(order_id=order_id)
                done += 1
            except TransitionNotAllowed as exc:
                messages.warning(request, f"{order_id}: {exc}")
        messages.success(request, f"{done} order(s) cancelled.")


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """The outbox, read-only: rows change only through delivery (or the resend action)."""

    list_display = ["order", "kind", "status", "attempts", "created_at", "sent_at", "error"]
    list_filter = ["status", "kind", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=order__id", "=order__external_id", "=order__tracking_code"]
    list_select_related = ["order"]
    actions = ["resend"]
    readonly_fields = [f.name for f in Notification._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm("orders.resend_notification")

    @admin.action(description="Send the selected failed notifications again", permissions=["resend"])
    def resend(self, request, queryset):
        ids = list(queryset.filter(status=NotificationStatus.FAILED).values_list("id", flat=True))
        notifications_enqueue(notification_ids=ids)
        self.message_user(request, f"{len(ids)} failed notification(s) queued again.", messages.SUCCESS)
