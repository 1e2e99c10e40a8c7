from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from couriers.api import CourierCreateApi, TokenCreateApi, TokenDeleteAllApi, TokenDeleteApi
from couriers.staff_access import StaffLoginView
from infra.http.converters import TRACKING_CODE  # noqa: F401 (registers the converter)
from infra.http.health import healthz, readyz
from infra.http.throttles import LoginAddressThrottle, LoginUsernameThrottle, ProbeAddressThrottle, throttled
from infra.observability.metrics import metrics_view
from orders.api import OrderCancelApi, OrderCreateListApi, OrderEventCreateApi, OrderGetApi, OrderNotificationListApi
from tracking.api import (
    CourierLocationGetApi,
    OrderLocationGetApi,
    OrderTrackGetApi,
    PingBatchCreateApi,
    TrackingLinkGetApi,
)
from tracking.views import backoffice_map, order_tracking_page

login_throttled = throttled(LoginUsernameThrottle, LoginAddressThrottle)

api_v1 = [
    path("auth/token", TokenCreateApi.as_view(), name="auth-token"),
    path("auth/logout", TokenDeleteApi.as_view(), name="auth-logout"),
    path("auth/logout-all", TokenDeleteAllApi.as_view(), name="auth-logout-all"),
    path("couriers", CourierCreateApi.as_view(), name="couriers"),
    path("couriers/<uuid:courier_id>/location", CourierLocationGetApi.as_view(), name="courier-location"),
    path("orders", OrderCreateListApi.as_view(), name="orders"),
    path("orders/<uuid:order_id>", OrderGetApi.as_view(), name="order"),
    path("orders/<uuid:order_id>/events", OrderEventCreateApi.as_view(), name="order-events"),
    path("orders/<uuid:order_id>/cancel", OrderCancelApi.as_view(), name="order-cancel"),
    path("orders/<uuid:order_id>/location", OrderLocationGetApi.as_view(), name="order-location"),
    path("orders/<uuid:order_id>/track", OrderTrackGetApi.as_view(), name="order-track"),
    path("orders/<uuid:order_id>/notifications", OrderNotificationListApi.as_view(), name="order-notifications"),
    path("track/<tracking_code:tracking_code>", TrackingLinkGetApi.as_view(), name="tracking-link"),
    path("locations", PingBatchCreateApi.as_view(), name="locations"),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", throttled(ProbeAddressThrottle)(readyz), name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include(api_v1)),
    path("t/<tracking_code:tracking_code>", order_tracking_page, name="tracking-page"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file: the page runs no inline code.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    # The admin's login, throttled like every login; listed before the admin's own routes.
    path("admin/login/", login_throttled(admin.site.login)),
    path("admin/", admin.site.urls),
    # Only log in and out: passwords are set by staff in the admin (no e-mail reset here).
    path("accounts/login/", login_throttled(StaffLoginView.as_view()), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("backoffice/", backoffice_map, name="backoffice"),
]

# Unknown URLs under /api/ answer JSON, like every other API error.
handler404 = "infra.http.openapi.not_found"
