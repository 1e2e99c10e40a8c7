from __future__ import annotations

from celery import shared_task

from couriers.services import api_tokens_expired_delete as api_tokens_expired_delete_service


@shared_task
def api_tokens_expired_delete() -> int:
    return api_tokens_expired_delete_service()
