from __future__ import annotations

import json

from django.contrib import admin, messages
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from orders.models import Notification, NotificationStatus, Order, OrderEvent
from orders.notifications import notifications_enqueue
from orders.services import TransitionNotAllowed, order_cancel
from tracking.selectors import order_track_get


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    fields = ["type", "status_after", "courier", "recorded_at", "received_at", "location", "accuracy_m"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class NotificationInline(admin.TabularInline):
    model = Notification
    fields = ["kind", "status", "attempts", "created_at", "sent_at", "error"]
    readonly_fields = fields
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
        "id", "tracking_code", "status", "courier", "destination_text", "trail_map",
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

    @admin.display(description="trail")
    def trail_map(self, order):
        track = order_track_get(order=order)
        data = {
            "destination": [order.destination.y, order.destination.x],
            "trail": [[f["geometry"]["coordinates"][1], f["geometry"]["coordinates"][0]] for f in track["features"]],
        }
        return format_html(
            '<link rel="stylesheet" href="{}"><div id="trail-map" style="height:380px;width:640px" data-map="{}"></div>'
            '<script src="{}"></script><script>{}</script>',
            static("vendor/leaflet/leaflet.css"),
            json.dumps(data),
            static("vendor/leaflet/leaflet.js"),
            mark_safe(TRAIL_MAP_JS),  # noqa: S308 (constant code)
        )

    @admin.action(description="Cancel selected orders")
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

    @admin.action(description="Send the selected failed notifications again")
    def resend(self, request, queryset):
        ids = list(queryset.filter(status=NotificationStatus.FAILED).values_list("id", flat=True))
        notifications_enqueue(notification_ids=ids)
        self.message_user(request, f"{len(ids)} failed notification(s) queued again.", messages.SUCCESS)


TRAIL_MAP_JS = """
(function () {
  const el = document.getElementById("trail-map");
  const data = JSON.parse(el.dataset.map);
  const map = L.map(el).setView(data.destination, 14);
  L.tileLayer("%s", {maxZoom: 19}).addTo(map);
  L.circleMarker(data.destination, {radius: 8, color: "#1f1f1f", fillColor: "#ffd400", fillOpacity: 1})
    .bindTooltip("destino").addTo(map);
  if (data.trail.length) {
    const line = L.polyline(data.trail, {color: "#d1401d", weight: 4}).addTo(map);
    map.fitBounds(line.getBounds().extend(data.destination), {maxZoom: 16});
  }
})();
"""


def _tile_url() -> str:
    from django.conf import settings

    return settings.MAP_TILE_URL


TRAIL_MAP_JS = TRAIL_MAP_JS % _tile_url()
