"""What the worker could not store, kept so nothing a courier sent is lost silently.

- A ping the database refused: `ping_batch_record` writes it inside its own transaction, so
  a dead letter commits with the good pings of its batch or not at all.
- A whole batch message that failed for good (unreadable, refused for a reason no single
  ping explains, or killing its worker every time): the task writes it in a transaction of
  its own before the message is acknowledged.

Operators replay both once the cause is fixed (`manage.py replay_dead_letters`, the admin).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone
from kombu.serialization import loads, prepare_accept_content

from tracking.models import PingBatchDeadLetter, PingDeadLetter
from tracking.services import ingest

# One statement for the batch's refused pings, one row per event (courier, event id), as for
# pings. A redelivered message, a replay that fails again, or a copy of the event with its
# device time written otherwise meets its row: the failure is counted, the newest error
# kept, the copy first refused stays. A row already replayed is left alone: the ping is
# stored, and an old copy of the message failing again says nothing new. Refused copies of
# one event in one batch are one row too: ON CONFLICT DO UPDATE may touch a row once per
# statement, hence DISTINCT ON.
UPSERT_SQL = """
INSERT INTO tracking_pingdeadletter AS t (
    courier_id, event_id, recorded_at, received_at, ping, error_class, error_message, failures,
    first_failed_at, last_failed_at)
SELECT DISTINCT ON (e) %s, e, r, %s, p, c, m, 1, %s, %s
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) WITH ORDINALITY AS u(e, r, p, c, m, n)
ORDER BY e, n
ON CONFLICT (courier_id, event_id) DO UPDATE SET
    error_class = EXCLUDED.error_class, error_message = EXCLUDED.error_message,
    failures = t.failures + 1, last_failed_at = EXCLUDED.last_failed_at
WHERE t.replayed_at IS NULL
"""


def _text(value: object, *, limit: int | None = None) -> str:
    """Text PostgreSQL always accepts: no NUL, no lone surrogate."""
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    elif not isinstance(value, str):
        value = str(value) if isinstance(value, uuid.UUID) else _json(value)
    return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")[:limit]


def _event_id_text(value: object) -> str:
    """The event id as its row's key: a UUID in its canonical form (one event written in two
    cases is one row), anything else as text PostgreSQL accepts."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return _text(value, limit=64)


def _error_class(exc: BaseException) -> str:
    return _text(f"{type(exc).__module__}.{type(exc).__qualname__}", limit=200)


def _error_message(exc: BaseException) -> str:
    """The error's text, or its repr when it has none (a bare DeadLetter, a KeyError's key)."""
    return _text(str(exc) or repr(exc), limit=4000)


def _json(value: object) -> str:
    # ensure_ascii: every character outside ASCII (a lone surrogate included) as an escape.
    return json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, dt.datetime) else str(v))


def ping_dead_letters_record(
    *, courier_id: uuid.UUID, received_at: dt.datetime, failures: list[tuple[dict[str, Any], BaseException]]
) -> None:
    """Keep each refused ping with its error (one statement). Runs in the caller's transaction."""
    if not failures:
        return
    now = timezone.now()
    pings = [ping if isinstance(ping, dict) else {"ping": ping} for ping, _ in failures]
    with connection.cursor() as cursor:
        cursor.execute(
            UPSERT_SQL,
            [
                courier_id,
                received_at,
                now,
                now,
                [_event_id_text(p.get("event_id")) for p in pings],
                [_text(p.get("recorded_at"), limit=64) for p in pings],
                [_json(p) for p in pings],
                [_error_class(exc) for _, exc in failures],
                [_text(str(exc), limit=4000) for _, exc in failures],
            ],
        )


def ping_dead_letters_replay(
    *, ids: list[int] | None = None, progress: Callable[[PingDeadLetter, str], None] | None = None
) -> dict[str, int]:
    """Replay the rows not yet replayed (all of them, or `ids`) through `ping_batch_record`,
    one ping per transaction. A ping stored (or found already stored) marks its row replayed
    in that transaction, so a replay that dies half-way or runs twice stores each ping once;
    a ping refused again stays, with its new error. Returns counts by outcome."""
    pending = PingDeadLetter.objects.filter(replayed_at__isnull=True).order_by("id")
    if ids is not None:
        pending = pending.filter(id__in=ids)
    counts = {"replayed": 0, "failed": 0}
    for letter_id in list(pending.values_list("id", flat=True)):
        with transaction.atomic():
            # Two operators replaying at once: the second skips the row the first holds.
            letter = (
                PingDeadLetter.objects.select_for_update(skip_locked=True)
                .filter(id=letter_id, replayed_at__isnull=True)
                .first()
            )
            if letter is None:
                continue
            ingest.ping_batch_record(
                courier_id=letter.courier_id, received_at=letter.received_at, pings=[json.loads(letter.ping)]
            )
            failures = letter.failures
            letter.refresh_from_db(fields=["failures"])
            if letter.failures > failures:  # the service dead-lettered it again
                outcome = "failed"
            else:
                letter.replayed_at = timezone.now()
                letter.save(update_fields=["replayed_at"])
                outcome = "replayed"
        counts[outcome] += 1
        if progress:
            progress(letter, outcome)
    return counts


# One row per task message: a message delivered again after its dead letter was written
# (its acknowledgement lost with a connection) counts one failure more instead of a row.
BATCH_UPSERT_SQL = """
INSERT INTO tracking_pingbatchdeadletter AS t (
    task_id, task_name, courier_id, kwargs, body, content_type, error_class, error_message, failures,
    first_failed_at, last_failed_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 1, %s, %s)
ON CONFLICT (task_id) DO UPDATE SET
    error_class = EXCLUDED.error_class, error_message = EXCLUDED.error_message,
    failures = t.failures + 1, last_failed_at = EXCLUDED.last_failed_at
WHERE t.replayed_at IS NULL
"""


def message_kwargs_decode(*, body: bytes | str, content_type: str, content_encoding: str) -> dict[str, Any] | None:
    """The keyword arguments of a Celery (protocol 2) message body, or None when the body is
    not one."""
    try:
        # kombu's serialization functions are unannotated.
        accept = prepare_accept_content(settings.CELERY_ACCEPT_CONTENT)  # type: ignore[no-untyped-call]
        _, kwargs, _ = loads(body, content_type, content_encoding, accept=accept)  # type: ignore[no-untyped-call]
    except Exception:
        return None
    return kwargs if isinstance(kwargs, dict) else None


def ping_batch_dead_letter_record(
    *,
    task_id: str,
    task_name: str,
    exc: BaseException,
    kwargs: dict[str, Any] | None = None,
    body: bytes | str | None = None,
    content_type: str = "",
    content_encoding: str = "",
) -> None:
    """Keep a batch message with its error, in its own transaction: its keyword arguments
    when they can be read (from `kwargs`, or decoded from `body`), else the body as
    received."""
    if kwargs is None and body is not None:
        kwargs = message_kwargs_decode(body=body, content_type=content_type, content_encoding=content_encoding)
    raw = ""
    if kwargs is None and body is not None:
        raw = body.decode("utf-8", "backslashreplace") if isinstance(body, bytes) else str(body)
    courier_id = None
    if isinstance(kwargs, dict):
        try:
            courier_id = uuid.UUID(str(kwargs.get("courier_id")))
        except ValueError:
            pass
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            BATCH_UPSERT_SQL,
            [
                _text(task_id, limit=255),
                _text(task_name, limit=255),
                courier_id,
                _json(kwargs) if kwargs is not None else "",
                _text(raw),
                _text(content_type, limit=255),
                _error_class(exc),
                _error_message(exc),
                now,
                now,
            ],
        )


def ping_batch_dead_letters_replay(
    *, ids: list[int] | None = None, progress: Callable[[PingBatchDeadLetter, str], None] | None = None
) -> dict[str, int]:
    """Replay the batch dead letters not yet replayed (all, or `ids`) through
    `ping_batch_record`, one batch per transaction; the row is marked replayed in that
    transaction, so a replay that dies half-way or runs twice stores each batch once (the
    pings' own keys make a second store a no-op). A batch that fails again keeps its row with
    the new error; a body that could never be read is left as it is. Returns counts by
    outcome."""
    pending = PingBatchDeadLetter.objects.filter(replayed_at__isnull=True).order_by("id")
    if ids is not None:
        pending = pending.filter(id__in=ids)
    counts = {"replayed": 0, "failed": 0, "unreadable": 0}
    for letter_id in list(pending.values_list("id", flat=True)):
        outcome = "replayed"
        try:
            with transaction.atomic():
                letter = (
                    PingBatchDeadLetter.objects.select_for_update(skip_locked=True)
                    .filter(id=letter_id, replayed_at__isnull=True)
                    .first()
                )
                if letter is None:
                    continue
                kwargs: Any = json.loads(letter.kwargs) if letter.kwargs else None
                readable = isinstance(kwargs, dict) and "courier_id" in kwargs and isinstance(kwargs.get("pings"), list)
                if not readable:
                    outcome = "unreadable"
                else:
                    ingest.ping_batch_record(
                        courier_id=kwargs["courier_id"],
                        received_at=kwargs.get("received_at") or letter.first_failed_at,
                        pings=kwargs["pings"],
                    )
                    letter.replayed_at = timezone.now()
                    letter.save(update_fields=["replayed_at"])
        except Exception as exc:
            outcome = "failed"
            PingBatchDeadLetter.objects.filter(id=letter_id).update(
                error_class=_error_class(exc),
                error_message=_error_message(exc),
                failures=models.F("failures") + 1,
                last_failed_at=timezone.now(),
            )
            letter = PingBatchDeadLetter.objects.get(id=letter_id)
        counts[outcome] += 1
        if progress:
            progress(letter, outcome)
    return counts
