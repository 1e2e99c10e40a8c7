"""Consumer notifications through an outbox.

Writers (`order_transition` for assigned / on the way / delivered, `ping_batch_record` for
arriving) call `notifications_create` inside their own transaction: the outbox row commits
or rolls back with the change that causes it. Only rows actually inserted are enqueued,
after commit, to `orders.tasks.notification_deliver`, which claims the row, sends it through
the configured backend and records the result. Beat re-enqueues rows left pending (a broker
that lost the message) and `manage.py resend_failed_notifications` re-sends failed ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from infra.observability.metrics import metric_record
from orders.models import Notification, NotificationKind, NotificationStatus
from orders.notification_backends import DeliveryFailed, NotificationMessage, notification_backend_get

logger = logging.getLogger(__name__)

# (Portuguese, English); the consumer gets both, then the tracking link.
TEXTS: dict[str, tuple[str, str]] = {
    NotificationKind.ASSIGNED: ("Seu pedido foi aceito por {courier}.", "{courier} accepted your order."),
    NotificationKind.ON_THE_WAY: ("Seu pedido saiu para entrega.", "Your order is on the way."),
    NotificationKind.ARRIVING: ("Seu pedido está chegando!", "Your order is arriving!"),
    NotificationKind.DELIVERED: ("Pedido entregue. Bom proveito!", "Order delivered. Enjoy!"),
}

# One statement for any number of orders. Ids are sorted by the caller, so two batches
# inserting the same keys take their locks in the same order and cannot deadlock. When two
# transactions insert the same (order, kind) at once, the second waits for the first and,
# once it commits, does nothing: RETURNING then gives only the rows this writer created.
INSERT_SQL = """
INSERT INTO orders_notification (order_id, kind, status, attempts, error, created_at, provider_message_id)
SELECT o, %s, 'pending', 0, '', now(), '' FROM unnest(%s::uuid[]) AS u(o)
ON CONFLICT (order_id, kind) DO NOTHING
RETURNING id
"""


def notifications_create(*, order_ids: list[uuid.UUID], kind: str) -> list[int]:
    """Insert one outbox row per order for `kind` unless it exists; enqueue delivery of the
    new rows after commit. Must run inside the writer's transaction. Returns the new ids."""
    if not order_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(INSERT_SQL, [kind, sorted(order_ids)])
        created = [row[0] for row in cursor.fetchall()]
    if created:
        transaction.on_commit(lambda: notifications_enqueue(notification_ids=created))
    return created


def notifications_enqueue(*, notification_ids: list[int]) -> None:
    """Publish one delivery task per row. A broker that is down loses nothing: the rows stay
    pending and beat enqueues them again (`notifications_pending_resend`)."""
    from orders.tasks import notification_deliver

    for notification_id in notification_ids:
        try:
            notification_deliver.apply_async(
                kwargs={"notification_id": notification_id},
                retry=True,
                retry_policy=settings.CELERY_TASK_PUBLISH_RETRY_POLICY,
            )
        except Exception:
            logger.exception("could not enqueue notification %s; beat will retry it", notification_id)


def notification_message_build(*, notification: Notification) -> NotificationMessage:
    order = notification.order
    courier = (order.courier.first_name if order.courier is not None else "") or "Zé"
    pt, en = (text.format(courier=courier) for text in TEXTS[notification.kind])
    url = f"{settings.PUBLIC_BASE_URL}/t/{order.tracking_code}"
    return NotificationMessage(
        notification_id=notification.id,
        order_id=str(order.id),
        kind=notification.kind,
        subject=f"Zé: {pt}",
        text=f"Zé: {pt} / {en} Acompanhe / Track: {url}",
        tracking_url=url,
    )


def notification_deliver(*, notification_id: int, final_attempt: bool = True) -> str:
    """Steps: claim the row with one conditional UPDATE; build the message; send it outside
    any transaction; record `sent`, or the error (`pending` again when the caller will
    retry, `failed` on the final attempt, then re-raise for the retry).

    Returns the row's status afterwards, or "skipped" when there was nothing to claim."""
    now = timezone.now()
    lease_expired = now - dt.timedelta(seconds=settings.NOTIFICATIONS_STALE_AFTER_S)
    # The claim: of two workers racing on one row (a redelivered message, beat and a retry,
    # the resend command and a worker) exactly one UPDATE matches; the other sees 'sending'
    # or 'sent' and does nothing. A claim older than the lease belongs to a worker that died
    # mid-send, and may be taken over.
    claimed = (
        Notification.objects.filter(id=notification_id)
        .filter(
            Q(status__in=[NotificationStatus.PENDING, NotificationStatus.FAILED])
            | Q(status=NotificationStatus.SENDING, last_attempt_at__lt=lease_expired)
        )
        .update(status=NotificationStatus.SENDING, attempts=F("attempts") + 1, last_attempt_at=now)
    )
    if claimed == 0:
        return "skipped"
    notification = Notification.objects.select_related("order__courier").get(id=notification_id)
    mine = Notification.objects.filter(id=notification_id, status=NotificationStatus.SENDING)
    try:
        provider_message_id = notification_backend_get().send(notification_message_build(notification=notification))
    except DeliveryFailed as exc:
        status = NotificationStatus.FAILED if final_attempt else NotificationStatus.PENDING
        mine.update(status=status, error=str(exc)[:2000])
        metric_record(name="NotificationsFailed")
        logger.warning("notification %s attempt %s failed: %s", notification_id, notification.attempts, exc)
        if not final_attempt:
            raise
        return status
    mine.update(
        status=NotificationStatus.SENT, sent_at=timezone.now(), provider_message_id=provider_message_id[:128], error=""
    )
    metric_record(name="NotificationsSent")
    return NotificationStatus.SENT


def notifications_pending_resend(*, stale_after_s: int | None = None, limit: int = 500) -> list[int]:
    """Enqueue rows still pending (or claimed by a dead worker) after `stale_after_s`: the
    broker lost the message, or the web process died between commit and publish."""
    stale = timezone.now() - dt.timedelta(
        seconds=settings.NOTIFICATIONS_STALE_AFTER_S if stale_after_s is None else stale_after_s
    )
    ids = list(
        Notification.objects.filter(
            Q(status=NotificationStatus.PENDING, last_attempt_at__isnull=True, created_at__lt=stale)
            | Q(status__in=[NotificationStatus.PENDING, NotificationStatus.SENDING], last_attempt_at__lt=stale)
        )
        .order_by("created_at")
        .values_list("id", flat=True)[:limit]
    )
    notifications_enqueue(notification_ids=ids)
    return ids


def notifications_failed_resend(*, order_id: uuid.UUID | None = None, progress=None) -> dict[str, int]:
    """Send every failed row again, here and now (for operators). Returns counts by outcome."""
    failed = Notification.objects.filter(status=NotificationStatus.FAILED).order_by("created_at")
    if order_id:
        failed = failed.filter(order_id=order_id)
    counts: dict[str, int] = {}
    for notification_id in list(failed.values_list("id", flat=True)):
        outcome = notification_deliver(notification_id=notification_id, final_attempt=True)
        counts[outcome] = counts.get(outcome, 0) + 1
        if progress:
            progress(notification_id, outcome)
    return counts
