"""Django's admin app with the staff second factor and the short staff session
(couriers/staff_access.py). Imports no model: INSTALLED_APPS loads it before the models."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    """https://docs.djangoproject.com/en/5.2/ref/contrib/admin/#overriding-the-default-admin-site"""

    default_site = "couriers.staff_access.StaffAdminSite"

    def ready(self) -> None:
        super().ready()
        from django.contrib.auth.signals import user_logged_in

        from couriers.staff_access import staff_session_expiry_set

        user_logged_in.connect(staff_session_expiry_set, dispatch_uid="staff_session_expiry_set")
