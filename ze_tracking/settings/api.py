"""The REST API: Django REST framework, API tokens (django-rest-knox), the OpenAPI document."""

from __future__ import annotations

import datetime as dt

from ze_tracking.settings.core import env

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "couriers.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["infra.http.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "infra.http.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_PAGINATION_CLASS": "infra.http.api.Pagination",
    # The proxies in front of the app that append to X-Forwarded-For; throttles key on the
    # address the outermost trusted one saw. 0 (local): the peer address, and the header a
    # client writes is ignored (None would trust that header: never). deploy/ sets 2, the
    # load balancer and nginx. https://www.django-rest-framework.org/api-guide/throttling/
    "NUM_PROXIES": env.int("DRF_NUM_PROXIES", default=0),
}
# The longest page any list answers (`?limit=` above it is cut to it); 100 by default.
API_PAGE_DEFAULT = env.int("API_PAGE_DEFAULT", default=100)
API_PAGE_MAX = env.int("API_PAGE_MAX", default=500)
# What a courier keeps of its orders: the consumer's name and exact destination until this
# long after the order ended (a late question at the door), and a list this many days back.
COURIER_ORDER_DETAIL_AFTER_END_S = env.int("COURIER_ORDER_DETAIL_AFTER_END_S", default=3600)
COURIER_ORDERS_MAX_AGE_DAYS = env.int("COURIER_ORDERS_MAX_AGE_DAYS", default=7)

# --- API tokens (django-rest-knox): only a SHA-512 digest is stored; each login makes a
# new token for its device; a token expires API_TOKEN_TTL_H after its last use (sliding:
# the courier app stays logged in while it is used), and never lives past
# API_TOKEN_MAX_TTL_DAYS. https://jazzband.github.io/django-rest-knox/settings/
KNOX_TOKEN_MODEL = "couriers.ApiToken"
# knox's migrations would create its own token table beside ours (they ignore the swap).
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Token",  # the header existing apps send: `Authorization: Token …`
    "TOKEN_TTL": dt.timedelta(hours=env.int("API_TOKEN_TTL_H", default=24)),
    "AUTO_REFRESH": True,
    "AUTO_REFRESH_MAX_TTL": dt.timedelta(days=env.int("API_TOKEN_MAX_TTL_DAYS", default=30)),
    "MIN_REFRESH_INTERVAL": 60,  # at most one write per token a minute
    "TOKEN_MODEL": KNOX_TOKEN_MODEL,
}
# A staff token ends this long after its login: it is not renewed by use.
STAFF_API_TOKEN_TTL_H = env.int("STAFF_API_TOKEN_TTL_H", default=8)
# Logins beyond this many live tokens per user drop the oldest.
API_TOKENS_PER_USER_MAX = env.int("API_TOKENS_PER_USER_MAX", default=10)

SPECTACULAR_SETTINGS = {
    "TITLE": "Zé tracking API",
    "DESCRIPTION": (
        "Courier locations in, order locations and tracking out.\n\n"
        "**Log in** with `POST /api/v1/auth/token` (`username`, `password`, optional `device`); send the token "
        "as `Authorization: Token <token>`. Only its digest is stored. It expires after a day without use (each "
        "use extends it; 30 days at most), and is revoked by `POST /api/v1/auth/logout` (this device), "
        "`/api/v1/auth/logout-all`, a password change, or staff. **Lists** take `limit` (at most 500) and "
        "`offset`. **Throttled** requests (logins, ping batches, tracking links) answer 429 with `Retry-After`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's files from the drf-spectacular-sidecar package, served by the app.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The default enum hook, then the error answers every operation can give.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "infra.http.openapi.error_responses_document",
    ],
}
