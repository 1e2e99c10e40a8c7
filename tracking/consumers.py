"""Websockets: authenticate, join groups, forward events. Payloads are read by
`tracking.selectors`, shaped by `tracking.serializers` and published by `tracking.broadcasts`."""

from __future__ import annotations

import time
from types import SimpleNamespace

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.utils.module_loading import import_string

from couriers.staff_access import session_otp_verified
from infra.http.throttles import ThrottleUnavailable, TrackingAddressThrottle, TrackingCodeThrottle, throttles_check
from tracking.broadcasts import FLEET_GROUP, fleet_state_build, order_group
from tracking.tracking_link import PublicOrderStateSerializer, order_public_state_get

# What the fleet map shows: every courier and order. Support and operations leads hold both.
FLEET_PERMS = ("couriers.view_courier", "orders.view_order")
# Closed because the user is not (or no longer) signed in with the fleet's permissions.
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
# Refused at connect: too many attempts from this address (or at this code); retry later.
CLOSE_THROTTLED = 4429
# Refused at connect: the throttles cannot count (their Redis is out); the standard "Try
# Again Later". https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1 (IANA registry)
CLOSE_TRY_AGAIN_LATER = 1013


def user_may_watch_fleet(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perms(FLEET_PERMS))


def session_may_watch_fleet(*, session_key: str | None) -> bool:
    """Whether the session still belongs to an active user with the fleet's permissions,
    read afresh: a logout deletes the session, a password change invalidates its hash, the
    admin may take the rights away. Django's own `get_user` checks the first two. When the
    second factor is required, the session must have passed it."""
    if not session_key:
        return False
    store: SessionBase = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key=session_key)
    user = get_user(SimpleNamespace(session=store))  # type: ignore[arg-type]  # get_user reads .session only
    return user_may_watch_fleet(user) and session_otp_verified(user=user, session=store)


def socket_throttled(*, scope, tracking_code: str) -> bool:
    """The tracking link's throttles, applied to a websocket connect: the peer address and
    X-Forwarded-For as the HTTP request would carry them."""
    headers = dict(scope.get("headers") or [])
    request = HttpRequest()
    request.method = "GET"
    request.META["REMOTE_ADDR"] = (scope.get("client") or [""])[0]
    if b"x-forwarded-for" in headers:
        request.META["HTTP_X_FORWARDED_FOR"] = headers[b"x-forwarded-for"].decode("latin-1")
    # The throttles read `.kwargs` only.
    request.resolver_match = SimpleNamespace(kwargs={"tracking_code": tracking_code})  # type: ignore[assignment]
    return bool(
        throttles_check(request=request, view=None, throttles=[TrackingCodeThrottle(), TrackingAddressThrottle()])
    )


class FleetConsumer(AsyncJsonWebsocketConsumer):
    """`/ws/fleet/`, for the holders of FLEET_PERMS: every active courier and order, then each change."""

    checked_at = 0.0
    state_at = 0.0  # `time.time()` when the last full state was read

    async def connect(self):
        user = self.scope.get("user")
        session = self.scope.get("session")
        if not await database_sync_to_async(user_may_watch_fleet)(user) or not await database_sync_to_async(
            session_otp_verified
        )(user=user, session=session):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.checked_at = time.monotonic()
        # Join before reading the state, so no change falls between the two; clients keep
        # the newest `recorded_at` per marker, so an update older than the state is harmless.
        await self.channel_layer.group_add(FLEET_GROUP, self.channel_name)
        await self.accept()
        await self.send_state()

    async def send_state(self):
        self.state_at = time.time()
        await self.send_json({"type": "state", **await database_sync_to_async(fleet_state_build)()})

    async def disconnect(self, code):
        await self.channel_layer.group_discard(FLEET_GROUP, self.channel_name)

    async def still_allowed(self) -> bool:
        """Re-read the session before forwarding, at most every FLEET_SOCKET_RECHECK_S:
        nothing reaches a user who logged out or lost the rights after that, and an idle
        socket costs no query. A user found out is disconnected."""
        if time.monotonic() - self.checked_at < settings.FLEET_SOCKET_RECHECK_S:
            return True
        session = self.scope.get("session")
        if await database_sync_to_async(session_may_watch_fleet)(session_key=getattr(session, "session_key", None)):
            self.checked_at = time.monotonic()
            return True
        await self.channel_layer.group_discard(FLEET_GROUP, self.channel_name)
        await self.close(code=CLOSE_FORBIDDEN)
        return False

    async def fleet_moved(self, event):
        """What moved in one publish (`tracking.broadcasts`), as one message. A socket that
        reads a publish later than FLEET_SOCKET_BEHIND_S after it left (a slow browser or
        link; the layer's queue filled meanwhile and may have dropped some) gets the current
        state instead, and skips what was published before that state was read."""
        if not await self.still_allowed() or event["at"] < self.state_at:
            return
        if time.time() - event["at"] > settings.FLEET_SOCKET_BEHIND_S:
            await self.send_state()
            return
        await self.send_json({"type": "moved", "c": event["c"], "o": event["o"]})


class TrackConsumer(AsyncJsonWebsocketConsumer):
    """`/ws/track/<tracking_code>/`, for the consumer: that order's public state only."""

    async def connect(self):
        code = self.scope["url_route"]["kwargs"]["tracking_code"]
        # Before any lookup, so guessing codes over sockets costs the same budget as over HTTP.
        try:
            throttled = await database_sync_to_async(socket_throttled)(scope=self.scope, tracking_code=code)
        except ThrottleUnavailable:
            await self.close(code=CLOSE_TRY_AGAIN_LATER)
            return
        if throttled:
            await self.close(code=CLOSE_THROTTLED)
            return
        state = await database_sync_to_async(order_public_state_get)(tracking_code=code)
        if state is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = order_group(state.order_id)  # built from the database id, never from input
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(PublicOrderStateSerializer(state).data)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def order_public(self, event):
        await self.send_json(event["state"])
