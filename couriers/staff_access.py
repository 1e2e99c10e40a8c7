"""Staff access: the second factor (django-otp) and the short staff session.

With STAFF_OTP_REQUIRED (deploy/ turns it on), a staff login takes a TOTP code or a
recovery code: the admin's and /accounts/login/'s forms ask for it, the token login takes it
as `otp_token`, and the backoffice map and `/ws/fleet/` refuse a session not verified by it.
Without it (`make run`), staff log in with their password alone.
https://django-otp-official.readthedocs.io/en/stable/overview.html
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin import AdminSite
from django.contrib.auth.decorators import user_passes_test
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django_otp import DEVICE_ID_SESSION_KEY, match_token
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.forms import OTPAuthenticationForm
from django_otp.models import Device


def is_backoffice(user) -> bool:
    """Staff, or anyone given a backoffice role (a group) or permission: the people the
    second factor and the short sessions and tokens are for. Couriers have neither."""
    return bool(user.is_staff or user.is_superuser or user.groups.exists() or user.user_permissions.exists())


def token_lifetime_fixed(user) -> bool:
    """Whether the user's API tokens have the backoffice's short, fixed lifetime (not renewed
    on use): staff and superusers, read from the user row the token check already holds,
    with no query on the hot path. (Role users are staff: they open the admin.)"""
    return bool(user.is_staff or user.is_superuser)


def staff_otp_token_check(*, user, token: str) -> bool:
    """Whether a token login may go on: couriers need no code; backoffice people need one
    of their devices to accept `token` when the second factor is required (each device
    throttles its own failures)."""
    if not (settings.STAFF_OTP_REQUIRED and is_backoffice(user)):
        return True
    return bool(token) and match_token(user, token) is not None


def session_otp_verified(*, user, session) -> bool:
    """Whether the session was verified by a confirmed device of this user, read as
    django-otp's middleware reads it; always true when the second factor is not required."""
    if not settings.STAFF_OTP_REQUIRED:
        return True
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    return device is not None and device.user_id == user.pk and device.confirmed


def second_factor_passed(user) -> bool:
    """Verified by the second factor when it is required (the request's user, as
    django-otp's middleware annotates it)."""
    return bool(not settings.STAFF_OTP_REQUIRED or user.is_verified())


# The backoffice's pages: a session without the second factor is sent to the login, which
# asks for the code; the page's permissions are checked after.
second_factor_required = user_passes_test(second_factor_passed, login_url=settings.LOGIN_URL)


class StaffAdminSite(OTPAdminSite):
    """The admin: django-otp's admin site when the second factor is required (the login
    asks for the code; an unverified session is not staff here), Django's own otherwise."""

    def __init__(self, name: str = "admin"):
        super().__init__(name)

    @property
    def login_form(self):
        return OTPAdminAuthenticationForm if settings.STAFF_OTP_REQUIRED else None

    @property
    def login_template(self):
        return OTPAdminSite.login_template if settings.STAFF_OTP_REQUIRED else None

    def has_permission(self, request) -> bool:
        if settings.STAFF_OTP_REQUIRED:
            return super().has_permission(request)
        return AdminSite.has_permission(self, request)


class StaffLoginView(LoginView):
    """/accounts/login/: asks for the code too when the second factor is required."""

    def get_form_class(self):
        return OTPAuthenticationForm if settings.STAFF_OTP_REQUIRED else AuthenticationForm


def staff_session_expiry_set(sender, request, user, **kwargs) -> None:
    """`user_logged_in` receiver: a staff browser session ends STAFF_SESSION_AGE_S after
    login, not after Django's two-week SESSION_COOKIE_AGE."""
    if is_backoffice(user) and hasattr(request, "session"):
        request.session.set_expiry(settings.STAFF_SESSION_AGE_S)
