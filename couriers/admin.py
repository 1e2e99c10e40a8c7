from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin

from couriers.models import Courier, User
from couriers.services import courier_token_reset

admin.site.register(User, UserAdmin)


@admin.register(Courier)
class CourierAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "created_at"]
    search_fields = ["name", "user__username", "=id"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    actions = ["reset_tokens"]

    @admin.action(description="Log out of the app (reset API token)")
    def reset_tokens(self, request, queryset):
        for courier in queryset:
            courier_token_reset(courier=courier)
        messages.success(request, f"{queryset.count()} courier(s) must log in again.")
