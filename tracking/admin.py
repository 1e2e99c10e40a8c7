from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.utils import timezone
from django.utils.functional import cached_property

from tracking.models import CourierLastLocation, OrderLastLocation, Ping


class EstimatedCountPaginator(Paginator):
    """Counting millions of pings is a full scan. Unfiltered, the planner's estimate is
    instant and close enough for a page count; filtered, counting stops at COUNT_CAP."""

    COUNT_CAP = 10_000

    @cached_property
    def count(self):
        if self.object_list.query.where:
            return self.object_list[: self.COUNT_CAP].count()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COALESCE(SUM(c.reltuples), 0)::bigint FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'tracking_ping'::regclass"
            )
            return max(int(cursor.fetchone()[0]), 0)


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
    # Both filters hit indexes: recorded_at prunes partitions, courier uses (courier_id, recorded_at).
    list_filter = [("recorded_at", admin.DateFieldListFilter), "suspect_reason"]
    search_fields = ["=event_id", "=courier__id", "=order__id"]
    ordering = ["-recorded_at"]
    paginator = EstimatedCountPaginator
    # No index leads with recorded_at (the table keeps two indexes to stay cheap to write),
    # so the newest-first list is bounded to a window: the last hour unless a date filter
    # or a search narrows it. Searches use the primary key and (courier_id, recorded_at).
    DEFAULT_WINDOW = dt.timedelta(hours=1)

    def get_queryset(self, request):
        pings = super().get_queryset(request)
        narrowed = any(key.startswith("recorded_at") for key in request.GET) or request.GET.get("q")
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist") and not narrowed:
            pings = pings.filter(recorded_at__gte=timezone.now() - self.DEFAULT_WINDOW)
        return pings

    show_full_result_count = False
    list_per_page = 100


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
