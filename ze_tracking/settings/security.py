"""Security: throttles, TLS and HSTS, cookies, the Content-Security-Policy. `manage.py check
--deploy` passes with DEBUG off."""

from __future__ import annotations

from urllib.parse import urlsplit

from csp.constants import NONE, SELF

from ze_tracking.settings.core import DEBUG, env
from ze_tracking.settings.tracking import MAP_TILE_URL

# --- Throttles (DRF's rate syntax, counted in the Redis cache; see infra/http/throttles.py)
THROTTLE_RATES = {
    # Brute force: per account from anywhere, and per address whatever the account.
    "login_username": env.str("THROTTLE_LOGIN_USERNAME", default="10/min"),
    "login_address": env.str("THROTTLE_LOGIN_ADDRESS", default="30/min"),
    # The app sends a batch every few seconds; this only stops a runaway client.
    "ingest_courier": env.str("THROTTLE_INGEST_COURIER", default="300/min"),
    # One phone polls its link every 5 s; a carrier NAT puts many phones behind one address,
    # so the address budget is far more generous than the per-code one.
    "tracking_link_code": env.str("THROTTLE_TRACKING_LINK_CODE", default="60/min"),
    "tracking_link_address": env.str("THROTTLE_TRACKING_LINK_ADDRESS", default="1200/min"),
    # /readyz: the load balancer asks every few seconds from each of its nodes.
    "probe_address": env.str("THROTTLE_PROBE_ADDRESS", default="120/min"),
}

# --- Staff second factor (django-otp; couriers/staff_access.py): off for `make run`, on in
# every deployed stage (deploy/ze_infra/compute.py). Staff enrol a TOTP device and print
# recovery codes (a static device) in the admin.
# https://django-otp-official.readthedocs.io/en/stable/overview.html
STAFF_OTP_REQUIRED = env.bool("STAFF_OTP_REQUIRED", default=False)
OTP_TOTP_ISSUER = "Zé tracking"
# A staff browser session ends this long after login (others keep SESSION_COOKIE_AGE).
STAFF_SESSION_AGE_S = env.int("STAFF_SESSION_AGE_S", default=8 * 3600)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts and styles only from this site, no inline
# code; map tiles from the tile server; sockets to this site.
# https://django-csp.readthedocs.io/en/latest/configuration.html
_tiles = urlsplit(MAP_TILE_URL)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", *([f"{_tiles.scheme}://{_tiles.netloc}"] if _tiles.netloc else [])],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
