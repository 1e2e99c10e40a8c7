"""The ingest path, both halves.

Web (`pings_ingest`): validate each ping of a batch, stamp courier and receive time, publish
ONE Celery task for the accepted pings, answer. The request never writes pings itself.

Worker (`ping_batch_record`): enrich, store, upsert last locations, then broadcast, all in
one transaction so a worker killed mid-batch leaves nothing half-done; the redelivered
message is then applied exactly once thanks to the idempotent writes below it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass, field

import orjson
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from rest_framework.exceptions import ValidationError

from orders.models import NotificationKind, OrderStatus
from orders.notifications import notifications_create
from orders.selectors import courier_active_orders
from tracking import broadcasts
from tracking.serializers import PingInputSerializer, ping_validate_fast
from tracking.services.enrichment import EnrichedPing, pings_enrich
from tracking.services.last_location import last_locations_upsert
from tracking.services.storage import pings_store
from ze_tracking.api import PayloadTooLarge, ServiceUnavailable
from ze_tracking.logging import log_context_bind
from ze_tracking.metrics import metric_record

logger = logging.getLogger(__name__)


class BrokerUnavailable(ServiceUnavailable):
    """The batch could not be queued; nothing was stored. The client resends."""

    detail = "Locations cannot be queued right now; nothing was stored. Retry later."


class BatchTooLarge(PayloadTooLarge):
    """The accepted pings do not fit in one broker message."""


@dataclass
class IngestResult:
    accepted: int = 0
    rejected: list[dict] = field(default_factory=list)


def pings_ingest(*, courier_id: uuid.UUID, pings: list, received_at: dt.datetime | None = None) -> IngestResult:
    """Steps: load the courier's active orders (one query); validate each ping on its own;
    drop repeats inside the batch; publish one task with the accepted pings."""
    log_context_bind(courier_id=courier_id)
    received_at = received_at or timezone.now()
    active_order_ids = set(courier_active_orders(courier_id=courier_id).values_list("id", flat=True))
    result = IngestResult()
    accepted: dict[str, dict] = {}
    # One serializer for the whole batch: building DRF fields costs more than validating
    # with them (≈ 630 µs a ping when instantiated per ping, against ≈ 150 µs reused).
    validator = PingInputSerializer(context={"active_order_ids": active_order_ids})
    now = timezone.now()
    for index, raw in enumerate(pings):
        try:
            # Native-speed check first; the serializer decides (and explains) the rest.
            data = ping_validate_fast(raw, active_order_ids=active_order_ids, now=now)
            if data is None:
                data = validator.run_validation(raw)
        except ValidationError as exc:
            rejection = {"index": index, "errors": exc.detail}
            event_id = raw.get("event_id") if isinstance(raw, dict) else None
            # Echoed so the app can find the ping; only what an event id can look like.
            if isinstance(event_id, str) and len(event_id) <= 64 and event_id.isascii():
                rejection["event_id"] = event_id
            result.rejected.append(rejection)
            continue
        result.accepted += 1
        accepted[str(data["event_id"])] = {k: v for k, v in data.items() if v is not None and v != {}}
    if accepted:
        ping_batch_enqueue(courier_id=courier_id, received_at=received_at, pings=list(accepted.values()))
    metric_record(name="PingsAccepted", value=result.accepted)
    metric_record(name="PingsRejected", value=len(result.rejected))
    return result


def ping_batch_enqueue(*, courier_id: uuid.UUID, received_at: dt.datetime, pings: list[dict]) -> None:
    from tracking.tasks import ping_batch_record as task

    # Plain JSON values, as the worker will receive them; full microsecond precision
    # (DjangoJSONEncoder would cut device times to milliseconds).
    encoded = orjson.dumps({"courier_id": courier_id, "received_at": received_at, "pings": pings})
    kwargs = orjson.loads(encoded)
    # The broker's encoder escapes non-ASCII text (\uXXXX): count what it will send.
    size = len(encoded) if encoded.isascii() else len(json.dumps(kwargs))
    if size > settings.TRACKING["MAX_TASK_PAYLOAD_BYTES"]:
        raise BatchTooLarge(
            f"The accepted pings take {size} bytes; at most {settings.TRACKING['MAX_TASK_PAYLOAD_BYTES']} fit in "
            "one batch. Send fewer pings per request or smaller attributes."
        )
    try:
        task.apply_async(
            kwargs=kwargs,
            retry=True,
            retry_policy=settings.CELERY_TASK_PUBLISH_RETRY_POLICY,
            # Celery would otherwise put a repr of every ping in the message headers: slow to
            # build, and it would count twice against SQS's 256 KiB message limit.
            argsrepr="()",
            kwargsrepr=f"{{courier_id: {courier_id}, pings: <{len(pings)}>}}",
        )
    # SQS answers errors (throttling, KMS refusing the key, a missing queue) as ClientError,
    # which kombu does not treat as a connection error: it is just as much a 503.
    except (BrokerError, ClientError, BotoCoreError) as exc:
        logger.warning("The broker did not take a batch of %d pings: %r", len(pings), exc)
        raise BrokerUnavailable(str(exc)) from exc


def ping_batch_record(
    *,
    courier_id: uuid.UUID | str,
    received_at: dt.datetime | str,
    pings: list[dict],
    changed_order_ids: list[uuid.UUID] = (),
) -> int:
    """Steps: enrich (2 reads), store raw pings (1 insert), upsert last locations
    (1 statement), write "arriving" notifications (1 insert, only when a ping is close),
    broadcast what moved after commit, plus `changed_order_ids` (orders whose status the
    caller changed, which must reach the live views even if their position did not move).
    Returns the number of new pings."""
    courier_id = uuid.UUID(str(courier_id))
    if isinstance(received_at, str):
        received_at = dt.datetime.fromisoformat(received_at)
    with transaction.atomic():
        enriched = pings_enrich(courier_id=courier_id, received_at=received_at, pings=pings)
        stored = pings_store(pings=enriched)
        moved = last_locations_upsert(pings=enriched)
        notifications_create(order_ids=arriving_order_ids(pings=enriched), kind=NotificationKind.ARRIVING)
        order_ids = sorted({*moved.order_ids, *changed_order_ids})
        transaction.on_commit(
            lambda: broadcasts.last_locations_publish(courier_ids=moved.courier_ids, order_ids=order_ids)
        )
    stored_at = timezone.now()
    metric_record(name="Freshness", value=[(stored_at - p.recorded_at).total_seconds() for p in enriched])
    return stored


def arriving_order_ids(*, pings: list[EnrichedPing]) -> list[uuid.UUID]:
    """Orders in transit that a trusted ping of the batch puts within ARRIVING_RADIUS_M of
    the destination or under ARRIVING_ETA_S away. Only pings recorded once the delivery
    started count: a late ping from before "started" says nothing about arriving."""
    radius, eta = settings.ARRIVING_RADIUS_M, settings.ARRIVING_ETA_S
    return list(
        {
            leg.order_id
            for ping in pings
            if not ping.suspect_reason
            for leg in ping.legs
            if leg.status == OrderStatus.IN_TRANSIT
            and leg.started_at is not None
            and ping.recorded_at >= leg.started_at
            and (leg.distance_to_destination_m <= radius or leg.eta_seconds < eta)
        }
    )
