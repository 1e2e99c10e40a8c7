"""The ingest path, both halves.

Web (`pings_ingest`): validate each ping of a batch, stamp courier and receive time, publish
ONE Celery task for the accepted pings, answer. The request never writes pings itself.

Worker (`ping_batch_record`): enrich, store, upsert last locations, then broadcast, all in
one transaction so a worker killed mid-batch leaves nothing half-done; the redelivered
message is then applied exactly once thanks to the idempotent writes below it. A ping the
database refuses is dead-lettered (`tracking/services/dead_letters.py`) without its
neighbours; what else fails is for the task to retry or reject (docs/RELIABILITY.md).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from rest_framework.exceptions import ValidationError

from infra.db.failures import Failure, failure_classify
from infra.http.api import PayloadTooLarge, ServiceUnavailable
from infra.http.breakers import BROKER
from infra.observability.logging import log_context_bind
from infra.observability.metrics import metric_record
from orders.models import NotificationKind, OrderStatus
from orders.notifications import notifications_create
from orders.selectors import courier_active_orders
from tracking import broadcasts
from tracking.rules import tracking_rules
from tracking.serializers import PingInputSerializer, ping_validate_fast
from tracking.services import dead_letters
from tracking.services.enrichment import EnrichedPing, PingBatch, pings_enrich
from tracking.services.last_location import LastLocationsMoved, last_locations_upsert
from tracking.services.storage import pings_store

logger = logging.getLogger(__name__)


class BrokerUnavailable(ServiceUnavailable):
    """The batch could not be queued; nothing was stored. The client resends."""

    detail = "Locations cannot be queued right now; nothing was stored. Retry later."


class BatchTooLarge(PayloadTooLarge):
    """The accepted pings do not fit in one broker message."""


SEND_LESS = "Send fewer pings per request or smaller attributes."


@dataclass
class IngestResult:
    accepted: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


def pings_ingest(*, courier_id: uuid.UUID, pings: list[Any], received_at: dt.datetime | None = None) -> IngestResult:
    """Steps: load the courier's active orders (one query, only when a ping names an order:
    apps that leave orders to enrichment save it); validate each ping on its own; keep one
    ping per event id (a repeat at the same instant is dropped, one at another instant
    rejected); publish one task with the accepted pings."""
    log_context_bind(courier_id=courier_id)
    received_at = received_at or timezone.now()
    names_an_order = any(isinstance(raw, dict) and raw.get("order_id") is not None for raw in pings)
    active_order_ids = (
        set(courier_active_orders(courier_id=courier_id).values_list("id", flat=True)) if names_an_order else set()
    )
    result = IngestResult()
    # Keyed by a ping's identity, its event id (the courier is the batch's), with the index
    # of the copy kept.
    accepted: dict[uuid.UUID, tuple[int, dict[str, Any]]] = {}
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
            rejection: dict[str, Any] = {"index": index, "errors": exc.detail}
            event_id = raw.get("event_id") if isinstance(raw, dict) else None
            # Echoed so the app can find the ping; only what an event id can look like.
            if isinstance(event_id, str) and len(event_id) <= 64 and event_id.isascii():
                rejection["event_id"] = event_id
            result.rejected.append(rejection)
            continue
        kept = accepted.get(data["event_id"])
        if kept is not None and kept[1]["recorded_at"] != data["recorded_at"]:
            # One event, one ping: the worker would store only one of the two copies anyway;
            # say which here rather than accept both.
            result.rejected.append(
                {
                    "index": index,
                    "errors": {"event_id": [f"The ping at index {kept[0]} has this event_id at another recorded_at."]},
                    "event_id": str(data["event_id"]),
                }
            )
            continue
        result.accepted += 1
        if kept is None:  # a repeat at the same instant is the same ping: the first is kept
            accepted[data["event_id"]] = (index, {k: v for k, v in data.items() if v is not None and v != {}})
    if accepted:
        ping_batch_enqueue(
            courier_id=courier_id, received_at=received_at, pings=[ping for _, ping in accepted.values()]
        )
    metric_record(name="PingsAccepted", value=result.accepted)
    metric_record(name="PingsRejected", value=len(result.rejected))
    return result


def ping_batch_enqueue(*, courier_id: uuid.UUID, received_at: dt.datetime, pings: list[dict[str, Any]]) -> None:
    from tracking.tasks import ping_batch_record as task

    # Plain JSON values, as the worker will receive them; full microsecond precision
    # (DjangoJSONEncoder would cut device times to milliseconds).
    encoded = orjson.dumps({"courier_id": courier_id, "received_at": received_at, "pings": pings})
    kwargs = orjson.loads(encoded)
    # The broker's encoder escapes non-ASCII text (\uXXXX): count what it will send.
    size = len(encoded) if encoded.isascii() else len(json.dumps(kwargs))
    if size > (limit := tracking_rules().max_task_payload_bytes):
        raise BatchTooLarge(f"The accepted pings take {size} bytes; at most {limit} fit in one batch. {SEND_LESS}")
    if not BROKER.allows():
        raise BrokerUnavailable("the broker failed moments ago")
    try:
        task.apply_async(
            kwargs=kwargs,
            retry=True,
            retry_policy=settings.CELERY_TASK_PUBLISH_RETRY_POLICY,
            # Celery would otherwise put a repr of every ping in the message headers: slow to
            # build, and it would count twice against SQS's 256 KiB message limit.
            argsrepr="()",
            kwargsrepr=f"{{courier_id: {courier_id}, pings: <{len(pings)}>}}",
            # No queue declaration per message: Celery would bind and hash the queue entity
            # on every publish (a tenth of the request's Python time) to find it declared
            # already. The routing key names the queue itself (the direct default
            # exchange); workers declare their queues, SQS's exist before the app.
            declare=[],
        )
    # SQS answers errors (throttling, KMS refusing the key, a missing queue) as ClientError,
    # which kombu does not treat as a connection error: it is just as much a 503, except a
    # refusal of this message alone (too large), which is this request's 413: the broker
    # works, and the breaker stays closed for everyone else.
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidParameterValue":
            logger.warning("The broker refused a batch of %d pings: %r", len(pings), exc)
            raise BatchTooLarge(f"The broker refused the accepted pings as one message. {SEND_LESS}") from exc
        logger.warning("The broker did not take a batch of %d pings: %r", len(pings), exc)
        BROKER.trip(exc)
        raise BrokerUnavailable(str(exc)) from exc
    except (BrokerError, BotoCoreError) as exc:
        logger.warning("The broker did not take a batch of %d pings: %r", len(pings), exc)
        BROKER.trip(exc)
        raise BrokerUnavailable(str(exc)) from exc


def ping_batch_record(
    *,
    courier_id: uuid.UUID | str,
    received_at: dt.datetime | str,
    pings: list[dict[str, Any]],
    changed_order_ids: Sequence[uuid.UUID] = (),
) -> int:
    """Steps: enrich (2 reads), store raw pings (1 insert), upsert last locations
    (1 statement), write "arriving" notifications (1 insert, only when a ping is close),
    broadcast what moved after commit, plus `changed_order_ids` (orders whose status the
    caller changed, which must reach the live views even if their position did not move).

    When the database refuses a ping's data (a number outside its column, a string jsonb
    rejects), the transaction is rolled back and the batch recorded again in halves, each in
    its own savepoint, down to the single pings at fault, which are dead-lettered in the same
    transaction: the good pings, their last-location update and notifications are stored.
    Any other error is raised for the task to retry or reject. Returns the number of new pings."""
    batch = PingBatch.of(courier_id=courier_id, received_at=received_at, pings=pings)
    courier_id, received_at = batch.courier_id, batch.received_at
    try:
        with transaction.atomic():
            stored, moved, enriched = _pings_record(batches=[batch])
            _broadcast_on_commit(moved=moved, changed_order_ids=changed_order_ids)
    except Exception as exc:
        if failure_classify(exc=exc) is not Failure.DATA:
            raise
        error = exc
    else:
        _freshness_record(pings=enriched)
        return stored
    with transaction.atomic():
        # Foreign keys are checked at each statement, not at COMMIT (Django declares them
        # deferred): a violation then fails the half that caused it, inside its savepoint,
        # instead of the commit of every half that succeeded.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        refused: list[tuple[dict[str, Any], BaseException]] = []
        stored, moved, enriched = _pings_record_splitting(
            courier_id=courier_id, received_at=received_at, pings=pings, error=error, refused=refused
        )
        dead_letters.ping_dead_letters_record(courier_id=courier_id, received_at=received_at, failures=refused)
        _broadcast_on_commit(moved=moved, changed_order_ids=changed_order_ids)
    logger.warning(
        "dead-lettered %d of %d pings of courier %s: %s",
        len(refused), len(pings), courier_id, "; ".join(sorted({type(exc).__name__ for _, exc in refused})),
    )  # fmt: skip
    metric_record(name="PingsDeadLettered", value=len(refused))
    _freshness_record(pings=enriched)
    return stored


def _pings_record(*, batches: list[PingBatch]) -> tuple[int, LastLocationsMoved, list[EnrichedPing]]:
    enriched = pings_enrich(batches=batches)
    # Only the pings stored, and stored fixes the position filter reinstated, move a last
    # location or send a notice: a copy of an event stored with another device time would
    # move a location to a time no stored ping has, and a ping stored before did its part in
    # the transaction that stored it.
    stored = pings_store(pings=enriched)
    moving = sorted([*stored, *(p for p in enriched if p.reinstated)], key=lambda p: p.recorded_at)
    moved = last_locations_upsert(pings=moving)
    notifications_create(order_ids=arriving_order_ids(pings=moving), kind=NotificationKind.ARRIVING)
    return len(stored), moved, enriched


def _pings_record_splitting(
    *,
    courier_id: uuid.UUID,
    received_at: dt.datetime,
    pings: list[dict[str, Any]],
    error: BaseException,
    refused: list[tuple[dict[str, Any], BaseException]],
) -> tuple[int, LastLocationsMoved, list[EnrichedPing]]:
    """`pings` failed with the data error `error`: record each half in its own savepoint and
    split again each half that fails, down to the single pings at fault, which go to
    `refused` (about 2·log2(n) savepoints for one bad ping in n). The halves keep the batch's
    order, so the older half's last location is in place when the newer half is enriched."""
    if len(pings) == 1:
        refused.append((pings[0], error))
        return 0, LastLocationsMoved([], []), []
    stored, courier_ids, order_ids, enriched = 0, set(), set(), []
    middle = len(pings) // 2
    for half in (pings[:middle], pings[middle:]):
        try:
            with transaction.atomic():
                half_stored, moved, half_enriched = _pings_record(batches=[PingBatch(courier_id, received_at, half)])
        except Exception as exc:
            if failure_classify(exc=exc) is not Failure.DATA:
                raise
            half_stored, moved, half_enriched = _pings_record_splitting(
                courier_id=courier_id, received_at=received_at, pings=half, error=exc, refused=refused
            )
        stored += half_stored
        courier_ids.update(moved.courier_ids)
        order_ids.update(moved.order_ids)
        enriched += half_enriched
    return stored, LastLocationsMoved(courier_ids=sorted(courier_ids), order_ids=sorted(order_ids)), enriched


def _freshness_record(*, pings: list[EnrichedPing]) -> None:
    stored_at = timezone.now()
    metric_record(name="Freshness", value=[(stored_at - p.recorded_at).total_seconds() for p in pings])


def _broadcast_on_commit(*, moved: LastLocationsMoved, changed_order_ids: Sequence[uuid.UUID]) -> None:
    order_ids = sorted({*moved.order_ids, *changed_order_ids})
    transaction.on_commit(lambda: broadcasts.last_locations_publish(courier_ids=moved.courier_ids, order_ids=order_ids))


def arriving_order_ids(*, pings: list[EnrichedPing]) -> list[uuid.UUID]:
    """Orders in transit that a trusted, confirmed ping of the batch puts within
    ARRIVING_RADIUS_M of the destination or under ARRIVING_ETA_S away. A lone fix waits for
    a second fix or a good accuracy to confirm it (`plausibility.py` rule 4): it is trusted
    only until contradicted, and the notification cannot be withdrawn. Only pings recorded
    once the delivery started count: a late ping from before "started" says nothing about
    arriving."""
    radius, eta = settings.ARRIVING_RADIUS_M, settings.ARRIVING_ETA_S
    return list(
        {
            leg.order_id
            for ping in pings
            if not ping.suspect_reason and ping.confirmed
            for leg in ping.legs
            if leg.status == OrderStatus.IN_TRANSIT
            and leg.started_at is not None
            and ping.recorded_at >= leg.started_at
            and (leg.distance_to_destination_m <= radius or leg.eta_seconds < eta)
        }
    )
