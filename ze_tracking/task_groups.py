"""Tasks whose queued messages a worker runs in groups: one pool dispatch and one call of the
task for several messages, so that the task can apply them in one transaction.

A message is dispatched at once while a pool process is free (a group of one: no added
latency when the queue is short); while every process is busy, the messages that arrive wait
in the worker's main process, and the next process to finish takes them all (up to
`group_max`) as one group. The deeper the queue, the larger the groups.

Acknowledgement: the task returns one outcome per message (`ACK`, `REJECT`, `REQUEUE`) and the
worker's main process applies them when the pool hands the result back, that is after the
task's commit. Nothing is acknowledged before: a child killed or past its hard time limit
requeues the whole group (as `task_reject_on_worker_lost` and `task_acks_on_failure_or_timeout
= False` do for a single task); an error that escapes the task rejects the group without
requeue (as a failed `acks_late` task is).

The design follows celery-batches (https://github.com/clokep/celery-batches): a task strategy
that buffers requests in the main process and hands the pool picklable copies. That library
pins Celery below 5.7, flushes on a count or a timer rather than when a process is free, and
acknowledges every message of a flush whatever the task returned, hence this module.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from queue import Empty, SimpleQueue
from typing import Any

import orjson
from billiard.exceptions import TimeLimitExceeded, WorkerLostError
from celery import current_app, signals
from celery._state import _task_stack
from celery.app.task import Context, Task
from celery.utils.imports import symbol_by_name
from celery.utils.time import get_exponential_backoff_interval, timezone
from celery.worker.request import create_request_cls
from celery.worker.strategy import hybrid_to_proto2, proto1_to_proto2
from kombu.asynchronous.timer import to_timestamp
from kombu.serialization import loads, prepare_accept_content
from kombu.transport.redis import QoS as RedisQoS
from kombu.transport.virtual.base import QoS as VirtualQoS
from kombu.utils.uuid import uuid

logger = logging.getLogger(__name__)

ACK = "ack"  # done (stored, dead-lettered, or a retry published): acknowledge
REJECT = "reject"  # never to run again as it is: reject without requeue (SQS: redrive to the DLQ)
REQUEUE = "requeue"  # not done and no retry could be published: back on the queue


@dataclass
class GroupedRequest:
    """What the task gets of one message: picklable, for the pool processes, which decode the
    body (the worker's main process only passes it on)."""

    id: str
    retries: int = 0
    body: Any = None
    content_type: str | None = None
    content_encoding: str | None = None
    is_eager: bool = False

    @cached_property
    def kwargs(self) -> dict:
        if self.content_type is None:  # decoded already (run eagerly, or an old protocol)
            return self.body[1]
        if self.content_type == "application/json":
            # orjson: several times kombu's json.loads, which was a seventh of a group's time.
            # It reads plain JSON only (kombu's {"__type__": ...} markers would stay dicts; the
            # project's tasks send plain values) and refuses text that is no valid UTF-8, such
            # as a lone surrogate escape (a ping the database refuses, to be dead-lettered):
            # kombu reads that.
            try:
                return orjson.loads(self.body)[1]
            except orjson.JSONDecodeError:
                pass
        accept = prepare_accept_content(current_app.conf.accept_content)
        return loads(self.body, self.content_type, self.content_encoding, accept=accept)[1]


class GroupedTask(Task):
    """Base class: the task's `run(requests)` receives a list of `GroupedRequest` and returns
    one outcome per request, in order. Callers send it messages as to any task
    (`apply_async(kwargs=...)`); run eagerly (`apply`), a message is a group of one."""

    abstract = True
    typing = False  # called with one list of requests, sent with the keyword arguments of one
    #: Most messages handed to one call of the task.
    group_max = 20

    def __init__(self) -> None:
        self._buffer: SimpleQueue = SimpleQueue()
        self._lock = threading.RLock()
        self._in_flight = 0
        self._flushing = False
        self._pool = None

    def apply(self, args=None, kwargs=None, *rest, **options):
        request = GroupedRequest(
            id=options.get("task_id") or uuid(), retries=options.get("retries") or 0, body=((), kwargs or {}, {}),
            is_eager=True,
        )  # fmt: skip
        return super().apply(([request],), {}, *rest, **options)

    def Strategy(self, task: Task, app, consumer) -> Callable:  # noqa: N802 (Celery's name)
        """Celery's default strategy up to the request (celery.worker.strategy.default, less
        rate limits, revocation and events, which this project does not use); then the request
        waits in the buffer (with an ETA, in the timer first) until the pool can take it."""
        self._pool = consumer.pool
        # consumer.qos is read when used, as Celery's strategy does: it is None until the
        # consumer first connects and replaced on every reconnection.
        hostname, eventer = consumer.hostname, consumer.event_dispatcher
        Request = create_request_cls(symbol_by_name(task.Request), task, consumer.pool, hostname, eventer, app=app)  # noqa: N806

        def eta_reached(request) -> None:
            consumer.qos.decrement_eventually()
            self._buffer.put(request)
            self._flush()

        def task_message_handler(message, body, ack, reject, callbacks, **kwargs: Any) -> None:
            if body is None and "args" not in message.payload:
                body, headers, decoded, utc = message.body, message.headers, False, app.uses_utc_timezone()
            elif "args" in message.payload:
                body, headers, decoded, utc = hybrid_to_proto2(message, message.payload)
            else:
                body, headers, decoded, utc = proto1_to_proto2(message, body)
            request = Request(
                message, on_ack=ack, on_reject=reject, app=app, hostname=hostname, eventer=eventer, task=task,
                body=body, headers=headers, decoded=decoded, utc=utc, connection_errors=consumer.connection_errors,
            )  # fmt: skip
            signals.task_received.send(sender=consumer, request=request)
            if request.eta:
                # A retry's countdown: held unacknowledged until then, as Celery holds it, and
                # not counted against the prefetch limit meanwhile.
                try:
                    eta = to_timestamp(timezone.to_system(request.eta)) if request.utc else to_timestamp(request.eta)
                except (OverflowError, ValueError):
                    logger.exception("unreadable ETA %r; rejecting %s", request.eta, request.id)
                    request.reject(requeue=False)
                    return
                consumer.qos.increment_eventually()
                consumer.timer.call_at(eta, eta_reached, (request,), priority=6)
                return
            self._buffer.put(request)
            self._flush()

        return task_message_handler

    def _flush(self) -> None:
        """Dispatch what waits, a group per free pool process. A call made while the loop
        runs (the solo pool runs a group inside apply_async and calls back at once; the
        threads pool calls back from its threads) leaves it to that loop."""
        with self._lock:
            if self._flushing:
                return
            self._flushing = True
        try:
            while True:
                with self._lock:
                    if self._in_flight >= max(self._pool.num_processes or 1, 1):
                        return
                    group = []
                    try:
                        while len(group) < self.group_max:
                            group.append(self._buffer.get_nowait())
                    except Empty:
                        pass
                    if not group:
                        return
                    self._in_flight += 1
                self._dispatch(group)
        finally:
            with self._lock:
                self._flushing = False
            # What a re-entrant call left: a group that finished while this loop dispatched.
            if not self._buffer.empty() and self._in_flight < max(self._pool.num_processes or 1, 1):
                self._flush()

    def _dispatch(self, group: list) -> None:
        done = threading.Event()

        def finished() -> None:
            if done.is_set():
                return
            done.set()
            with self._lock:
                self._in_flight -= 1
            self._flush()

        def on_return(outcomes) -> None:
            if not isinstance(outcomes, list) or len(outcomes) != len(group):
                # An error escaped the task: as for a failed acks_late task.
                logger.error("%s returned %r for %d messages; rejecting them", self.name, outcomes, len(group))
                outcomes = [REJECT] * len(group)
            requests_acknowledge(requests=[r for r, outcome in zip(group, outcomes, strict=True) if outcome == ACK])
            for request, outcome in zip(group, outcomes, strict=True):
                if outcome != ACK:
                    outcome_apply(request=request, outcome=outcome)
            finished()

        def on_error(exc_info) -> None:
            exc = getattr(exc_info, "exception", exc_info)
            # The child died with the group (killed, out of memory, past the hard time limit):
            # its transaction rolled back, every message goes back to the queue.
            requeue = isinstance(exc, WorkerLostError | TimeLimitExceeded)
            logger.error("%s lost a group of %d messages (%r); %s", self.name, len(group), exc,
                         "requeued" if requeue else "rejected")  # fmt: skip
            for request in group:
                outcome_apply(request=request, outcome=REQUEUE if requeue else REJECT)
            finished()

        requests = [
            GroupedRequest(r.id, r.request_dict.get("retries") or 0, r.body, r.content_type, r.content_encoding)
            for r in group
        ]
        try:
            self._pool.apply_async(
                group_run,
                (self, requests),
                callback=on_return,
                error_callback=on_error,
                soft_timeout=self.soft_time_limit,
                timeout=self.time_limit,
            )
        except Exception:
            logger.exception("%s could not dispatch a group of %d messages; requeued", self.name, len(group))
            for request in group:
                outcome_apply(request=request, outcome=REQUEUE)
            finished()


def group_run(task: GroupedTask, requests: list[GroupedRequest]) -> list[str] | None:
    """In the pool process: the task over one group, between the signals Celery's tracer
    sends around a task (the database connection tidy-up and the log context listen to
    them). An error that escapes the task is logged and returns None."""
    task_id = uuid()
    _task_stack.push(task)
    task.request_stack.push(Context(id=task_id, is_eager=False))
    outcomes = None
    try:
        signals.task_prerun.send(sender=task, task_id=task_id, task=task, args=(requests,), kwargs={})
        try:
            outcomes = task(requests)
        except Exception:
            logger.exception("%s failed on a group of %d messages", task.name, len(requests))
        signals.task_postrun.send(
            sender=task, task_id=task_id, task=task, args=(requests,), kwargs={}, retval=outcomes, state=None
        )
    finally:
        task.request_stack.pop()
        _task_stack.pop()
    return outcomes


def requests_acknowledge(*, requests: list) -> None:
    """Acknowledge the messages of several requests. On Redis in one round trip: kombu's Redis
    transport acknowledges a message by removing it from its unacknowledged index, a pipeline
    of its own per message (`kombu.transport.redis.QoS.ack`), which this does for all of them
    at once before the same bookkeeping. A broker that fails meanwhile leaves them
    unacknowledged, as Celery's own acknowledgement does: they are delivered again."""
    pending = [r for r in requests if not r.acknowledged]
    messages = [r.message for r in pending]
    channel = messages[0].channel if messages else None
    qos = getattr(channel, "qos", None)
    if len(messages) < 2 or not isinstance(qos, RedisQoS) or any(m.channel is not channel for m in messages):
        for request in pending:
            request.acknowledge()
        return
    try:
        with qos.pipe_or_acquire() as pipe:
            for message in messages:
                qos._remove_from_indices(message.delivery_tag, pipe)
            pipe.execute()
    except Exception:
        logger.exception("could not acknowledge %d messages; the broker will deliver them again", len(messages))
        return
    for request, message in zip(pending, messages, strict=True):
        VirtualQoS.ack(qos, message.delivery_tag)
        message._state = "ACK"
        request.acknowledged = True


def outcome_apply(*, request, outcome: str) -> None:
    if outcome == ACK:
        request.acknowledge()
    else:
        request.reject(requeue=outcome == REQUEUE)


def request_retry(*, task: Task, request: GroupedRequest, exc: BaseException, factor: float, maximum: float) -> str:
    """Publish the request again with exponential backoff and full jitter (what `Task.retry`
    does for a single task: the same task id, one retry more) and answer `ACK` for the
    original, or `REQUEUE` when the broker does not take it."""
    countdown = get_exponential_backoff_interval(
        factor=factor, retries=request.retries, maximum=maximum, full_jitter=True
    )
    signals.task_retry.send(sender=task, request=request, reason=exc, einfo=None)
    try:
        task.apply_async(kwargs=request.kwargs, countdown=countdown, retries=request.retries + 1, task_id=request.id)
    except Exception:
        logger.exception("could not publish the retry of %s[%s]; requeueing it", task.name, request.id)
        return REQUEUE
    return ACK
