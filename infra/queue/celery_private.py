"""The one module that takes over Celery's worker internals: its request
(`celery.worker.request.Request`) and consumer (`celery.worker.consumer.Consumer`), so that a
task message that fails before its task body can settle it is dead-lettered, not dropped.
Written against CELERY_VERSION: tests/test_failures.py fails when the installed version
differs, to have it checked again."""

from __future__ import annotations

import logging
from typing import Any

from billiard.einfo import ExceptionWithTraceback
from billiard.exceptions import TimeLimitExceeded, WorkerLostError
from celery.exceptions import Ignore, InvalidTaskError, Reject, Retry, Terminated
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.request import Request

logger = logging.getLogger(__name__)

#: The Celery version `DeadLetterRequest` and `Consumer` below were written and tested against.
CELERY_VERSION = "5.7.0"


# Celery ships no types: its classes are Any to mypy.
class DeadLetterRequest(Request):  # type: ignore[misc]
    """A task message that failed before its body could settle it (a body that cannot be
    decoded or is no `[args, kwargs, embed]`, arguments the task cannot take) is written by
    the task's `dead_letter_message` in the worker's main process and acknowledged, or
    requeued if that write fails; Celery's own lifecycle would reject it (on Redis: delete
    it), ack it as a success, or stop the worker. A lost worker, a time limit, a retry or a
    deliberate reject keep Celery's handling. docs/internals/task-settling.md."""

    def __init__(self, message: Any, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(message, *args, **kwargs)
        except (TypeError, ValueError, KeyError) as exc:
            raise InvalidTaskError(f"not a task message body: {exc!r}") from exc
        if not isinstance(self.args, list | tuple) or not isinstance(self.kwargs, dict):
            raise InvalidTaskError(
                f"not a task message body: arguments {type(self.args).__name__}, keyword arguments "
                f"{type(self.kwargs).__name__}"
            )

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> None:
        exc = exc_info.exception
        if isinstance(exc, ExceptionWithTraceback):
            exc = exc.exc
        passed_on = (WorkerLostError, TimeLimitExceeded, Reject, Ignore, Retry, Terminated, MemoryError)
        if isinstance(exc, passed_on) or self.acknowledged:
            super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
            return
        logger.error("dead-lettering %s[%s], which failed before it could run: %r", self.task.name, self.id, exc)
        try:
            self.task.dead_letter_message(
                task_id=self.id, body=self.body, content_type=self.content_type or "",
                content_encoding=self.content_encoding or "", exc=exc,
            )  # fmt: skip
        except Exception:
            logger.exception("could not dead-letter %s[%s]; requeueing it", self.task.name, self.id)
            self.reject(requeue=True)
            return
        self.acknowledge()


def message_dead_letter(*, app: Any, message: Any, exc: BaseException) -> bool:
    """Hand a message the worker's main process could not read to its task's
    `dead_letter_message`, then acknowledge it; requeue it when that write fails. False when
    its task has no such hook (Celery's own handling then applies)."""
    headers = message.headers if isinstance(message.headers, dict) else {}
    task = app.tasks.get(headers.get("task"))
    if not hasattr(task, "dead_letter_message"):
        return False
    task_id = str(headers.get("id") or message.delivery_tag)
    logger.error("dead-lettering %s[%s], which cannot be read: %r", task.name, task_id, exc)
    try:
        task.dead_letter_message(
            task_id=task_id, body=message.body, content_type=message.content_type or "",
            content_encoding=message.content_encoding or "", exc=exc,
        )  # fmt: skip
    except Exception:
        logger.exception("could not dead-letter %s[%s]; requeueing it", task.name, task_id)
        message.reject(requeue=True)
        return True
    message.ack()
    return True


class Consumer(CeleryConsumer):  # type: ignore[misc]
    """Celery's worker consumer (CELERY_WORKER_CONSUMER), except that a message whose body
    cannot be decoded, or that is no valid task message, is dead-lettered by its task
    instead of being acknowledged (Celery's `on_decode_error`) or rejected (its
    `on_invalid_task`, which on Redis deletes it) with a log line as its only trace."""

    def on_decode_error(self, message: Any, exc: BaseException) -> None:
        if not message_dead_letter(app=self.app, message=message, exc=exc):
            super().on_decode_error(message, exc)

    def on_invalid_task(self, body: Any, message: Any, exc: BaseException) -> None:
        if not message_dead_letter(app=self.app, message=message, exc=exc):
            super().on_invalid_task(body, message, exc)
