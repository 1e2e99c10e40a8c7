from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import InterfaceError, OperationalError

from orders.notification_backends import DeliveryFailed, sns_client_warm
from orders.notifications import notification_deliver as notification_deliver_service
from orders.notifications import notifications_pending_resend as notifications_pending_resend_service


# Idempotent (the claim in the service), so acks_late, redelivery and retries send once.
# Exponential backoff with jitter; the last attempt marks the row failed instead of raising.
@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(DeliveryFailed, OperationalError, InterfaceError),
    retry_backoff=settings.NOTIFICATIONS_RETRY_BACKOFF_S,
    retry_backoff_max=settings.NOTIFICATIONS_RETRY_BACKOFF_MAX_S,
    retry_jitter=True,
    max_retries=settings.NOTIFICATIONS_MAX_RETRIES,
)
def notification_deliver(self, *, notification_id: int) -> str:
    return notification_deliver_service(
        notification_id=notification_id, final_attempt=self.request.retries >= self.max_retries
    )


@shared_task
def notifications_pending_resend() -> list[int]:
    return notifications_pending_resend_service()


@worker_ready.connect
def _sns_client_warm(**kwargs) -> None:
    if settings.NOTIFICATIONS_BACKEND == "sns":
        sns_client_warm()
