from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin

from couriers.models import ApiToken, Courier, User
from couriers.services import courier_token_reset

# A new password logs the user out of the API wherever it is set (couriers/receivers.py).
admin.site.register(User, UserAdmin)


@admin.register(Courier)
class CourierAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "created_at"]
    search_fields = ["name", "user__username", "=id"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    actions = ["reset_tokens"]

    def has_revoke_tokens_permission(self, request) -> bool:
        return request.user.has_perm("couriers.revoke_courier_tokens")

    @admin.action(description="Log out of the app (revoke every API token)", permissions=["revoke_tokens"])
    def reset_tokens(self, request, queryset):
        for courier in queryset:
            courier_token_reset(courier=courier)
        messages.success(request, f"{queryset.count()} courier(s) must log in again.")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Who is logged in where, and a way to revoke one device (delete). Only the token's
    first characters and digest are stored, so nothing here can be used as a token; tokens
    are made by logging in, never here."""

    list_display = ["user", "device", "created", "expiry", "token_key"]
    list_select_related = ["user"]
    search_fields = ["user__username", "device"]
    # A tuple: one value for both, which the stubs type apart.
    fields = readonly_fields = ("user", "device", "created", "expiry", "token_key")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
