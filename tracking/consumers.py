"""Websockets: authenticate, join groups, forward events. Payloads are read by
`tracking.selectors`, shaped by `tracking.serializers` and published by `tracking.broadcasts`."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from tracking.broadcasts import FLEET_GROUP, fleet_state_build, order_group
from tracking.selectors import order_public_state_get
from tracking.serializers import PublicOrderStateSerializer


class FleetConsumer(AsyncJsonWebsocketConsumer):
    """`/ws/fleet/`, staff only: every active courier and order, then each change."""

    async def connect(self):
        user = self.scope.get("user")
        if not (user and user.is_authenticated and user.is_staff):
            await self.close(code=4403)
            return
        # Join before reading the state, so no change falls between the two; clients keep
        # the newest `recorded_at` per marker, so an update older than the state is harmless.
        await self.channel_layer.group_add(FLEET_GROUP, self.channel_name)
        await self.accept()
        await self.send_json({"type": "state", **await database_sync_to_async(fleet_state_build)()})

    async def disconnect(self, code):
        await self.channel_layer.group_discard(FLEET_GROUP, self.channel_name)

    async def courier_moved(self, event):
        await self.send_json({"type": "courier", "courier": event["courier"]})

    async def order_moved(self, event):
        await self.send_json({"type": "order", "order": event["order"]})


class TrackConsumer(AsyncJsonWebsocketConsumer):
    """`/ws/track/<tracking_code>/`, for the consumer: that order's public state only."""

    async def connect(self):
        state = await database_sync_to_async(order_public_state_get)(
            tracking_code=self.scope["url_route"]["kwargs"]["tracking_code"]
        )
        if state is None:
            await self.close(code=4404)
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
