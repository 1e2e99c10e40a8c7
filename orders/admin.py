from __future__ import annotations

from django.contrib import admin, messages

from orders.models import Notification, NotificationStatus
from orders.notifications import notifications_enqueue


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """The outbox, read-only: rows change only through delivery (or the resend action)."""

    list_display = ["order", "kind", "status", "attempts", "created_at", "sent_at", "error"]
    list_filter = ["status", "kind"]
    search_fields = ["order__id", "order__external_id"]
    date_hierarchy = "created_at"
    list_select_related = ["order"]
    actions = ["resend"]
    readonly_fields = [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Send the selected failed notifications again")
    def resend(self, request, queryset):
        ids = list(queryset.filter(status=NotificationStatus.FAILED).values_list("id", flat=True))
        notifications_enqueue(notification_ids=ids)
        self.message_user(request, f"{len(ids)} failed notification(s) queued again.", messages.SUCCESS)
