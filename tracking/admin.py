from __future__ import annotations

import datetime as dt
import json

from django.conf import settings
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connection
from django.templatetags.static import static
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from orders.admin import OrderAdmin
from orders.models import Order
from tracking.models import CourierLastLocation, OrderLastLocation, Ping, PingBatchDeadLetter, PingDeadLetter
from tracking.selectors import order_trail_list
from tracking.services.dead_letters import ping_batch_dead_letters_replay, ping_dead_letters_replay
from tracking.services.partitions import ping_partitions_list


class EstimatedCountPaginator(Paginator):
    """Counting millions of pings is a full scan. Unfiltered, the planner's estimate is
    instant and close enough for a page count; filtered, counting stops at COUNT_CAP."""

    COUNT_CAP = 10_000

    @cached_property
    def count(self):
        if self.object_list.query.where:
            return self.object_list[: self.COUNT_CAP].count()
        with connection.cursor() as cursor:
            # reltuples is -1 for a partition never analysed.
            return int(sum(max(rows, 0) for _, rows in ping_partitions_list(cursor=cursor)))


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Ping)
class PingAdmin(ReadOnlyAdmin):
    list_display = ["recorded_at", "courier_id", "order_id", "accuracy_m", "speed_mps", "suspect_reason"]
    # recorded_at prunes partitions and uses the BRIN index; courier uses the primary key.
    list_filter = [("recorded_at", admin.DateFieldListFilter), "suspect_reason"]
    search_fields = ["=event_id", "=courier__id", "=order__id"]
    ordering = ["-recorded_at"]
    paginator = EstimatedCountPaginator
    # No b-tree leads with recorded_at (one b-tree keeps the table cheap to write), so the
    # newest-first list is bounded to a window the BRIN index finds: the last hour unless a
    # date filter or a search narrows it. A courier search uses the primary key; event and
    # order searches scan (an operator's occasional look-up).
    DEFAULT_WINDOW = dt.timedelta(hours=1)

    def get_queryset(self, request):
        pings = super().get_queryset(request)
        narrowed = any(key.startswith("recorded_at") for key in request.GET) or request.GET.get("q")
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist") and not narrowed:
            pings = pings.filter(recorded_at__gte=timezone.now() - self.DEFAULT_WINDOW)
        return pings

    show_full_result_count = False
    list_per_page = 100


class ReplayedFilter(admin.SimpleListFilter):
    title = "replayed"
    parameter_name = "replayed"

    def lookups(self, request, model_admin):
        return [("no", "Not yet"), ("yes", "Yes")]

    def queryset(self, request, queryset):
        if self.value() in ("no", "yes"):
            return queryset.filter(replayed_at__isnull=self.value() == "no")
        return queryset


@admin.register(PingDeadLetter)
class PingDeadLetterAdmin(ReadOnlyAdmin):
    """Pings the database refused. Read-only: a fix goes into the code or the schema, then
    the replay action (or `manage.py replay_dead_letters`) stores them."""

    list_display = ["last_failed_at", "courier_id", "event_id", "error_class", "failures", "replayed_at"]
    list_filter = [ReplayedFilter, "error_class"]
    search_fields = ["=event_id", "=courier__id", "error_message"]
    ordering = ["-last_failed_at"]
    actions = ["replay"]
    show_full_result_count = False

    def has_replay_permission(self, request) -> bool:
        # The rows stay read-only; replaying them stores pings.
        return request.user.has_perm("tracking.replay_dead_letters")

    @admin.action(description="Replay the selected pings", permissions=["replay"])
    def replay(self, request, queryset):
        counts = ping_dead_letters_replay(ids=list(queryset.values_list("id", flat=True)))
        level = messages.WARNING if counts["failed"] else messages.SUCCESS
        self.message_user(request, f"{counts['replayed']} replayed, {counts['failed']} refused again", level)


@admin.register(PingBatchDeadLetter)
class PingBatchDeadLetterAdmin(ReadOnlyAdmin):
    """Whole batch messages the worker could not record (unreadable, refused as a whole, or
    killing their worker each time). Read-only, like the pings': replayed once the cause is
    fixed."""

    list_display = ["last_failed_at", "task_id", "courier_id", "error_class", "failures", "replayed_at"]
    list_filter = [ReplayedFilter, "error_class"]
    search_fields = ["=task_id", "=courier_id", "error_message"]
    ordering = ["-last_failed_at"]
    actions = ["replay"]
    show_full_result_count = False

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("tracking.replay_dead_letters")

    @admin.action(description="Replay the selected batches", permissions=["replay"])
    def replay(self, request, queryset):
        counts = ping_batch_dead_letters_replay(ids=list(queryset.values_list("id", flat=True)))
        level = messages.WARNING if counts["failed"] or counts["unreadable"] else messages.SUCCESS
        self.message_user(
            request,
            f"{counts['replayed']} replayed, {counts['failed']} refused again, {counts['unreadable']} unreadable",
            level,
        )


@admin.register(OrderLastLocation)
class OrderLastLocationAdmin(ReadOnlyAdmin):
    list_display = ["order", "courier", "recorded_at", "distance_to_destination_m", "eta_seconds", "updated_at"]
    list_select_related = ["order", "courier"]
    search_fields = ["=order__id"]
    show_full_result_count = False


@admin.register(CourierLastLocation)
class CourierLastLocationAdmin(ReadOnlyAdmin):
    list_display = ["courier", "recorded_at", "speed_mps", "updated_at"]
    list_select_related = ["courier"]
    search_fields = ["courier__name"]
    show_full_result_count = False


class OrderWithTrailAdmin(OrderAdmin):
    """The order page of `orders.admin`, plus its trail on a map (tracking's data): the
    standard way for a later app to extend an earlier app's admin."""

    readonly_fields = [*OrderAdmin.readonly_fields, "trail_map"]
    fields = [*OrderAdmin.fields, "trail_map"]

    @admin.display(description="trail")
    def trail_map(self, order):
        data = {
            "tile_url": settings.MAP_TILE_URL,
            "destination": [order.destination.y, order.destination.x],
            "trail": [[p["lat"], p["lon"]] for p in order_trail_list(order=order)],
        }
        # Files only, no inline script or style: the Content-Security-Policy allows none.
        return format_html(
            '<link rel="stylesheet" href="{}"><link rel="stylesheet" href="{}">'
            '<div id="trail-map" data-map="{}"></div><script src="{}"></script><script src="{}"></script>',
            static("vendor/leaflet/leaflet.css"),
            static("tracking/trail_map.css"),
            json.dumps(data),
            static("vendor/leaflet/leaflet.js"),
            static("tracking/trail_map.js"),
        )


admin.site.unregister(Order)
admin.site.register(Order, OrderWithTrailAdmin)
