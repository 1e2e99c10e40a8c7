from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tests.support.database import database_connect, lock_waiters
from tests.support.waiting import wait_for
from tracking.models import Ping
from tracking.selectors import order_trail_list
from tracking.services.enrichment import EnrichedPing
from tracking.services.ingest import ping_batch_record
from tracking.services.storage import ping_partitions_pack, pings_store


def key_pages(day: dt.date) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_size(%s::regclass) / 8192", [f"tracking_ping_p{day:%Y%m%d}_pkey"])
        return cursor.fetchone()[0]


def day_of_uploads(*, day: dt.date, couriers: list[uuid.UUID], uploads: int) -> None:
    """Each courier's pings arrive in uploads of 50, interleaved with the other couriers'."""
    start = dt.datetime.combine(day, dt.time(8), tzinfo=dt.UTC)
    for upload in range(uploads):
        for n, courier_id in enumerate(couriers):
            pings_store(
                pings=[
                    EnrichedPing(
                        event_id=uuid.uuid4(), courier_id=courier_id, received_at=timezone.now(),
                        recorded_at=start + dt.timedelta(seconds=4 * (upload * 50 + i)),
                        lat=-23.56 + n * 0.01, lon=-46.65 + i * 0.0001, accuracy_m=5.0,
                    )
                    for i in range(50)
                ]
            )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_packing_a_finished_day_keeps_every_ping_and_shrinks_its_key():
    today = timezone.now().astimezone(dt.UTC).date()
    finished, current = today - dt.timedelta(days=2), today
    couriers = [uuid.uuid4() for _ in range(20)]
    day_of_uploads(day=finished, couriers=couriers, uploads=10)
    day_of_uploads(day=current, couriers=couriers[:2], uploads=1)
    before = key_pages(finished)

    packed = ping_partitions_pack(today=today)

    assert f"tracking_ping_p{finished:%Y%m%d}" in packed and f"tracking_ping_p{current:%Y%m%d}" not in packed
    assert key_pages(finished) < before * 0.7
    assert Ping.objects.filter(recorded_at__date=finished).count() == 20 * 10 * 50
    assert ping_partitions_pack(today=today) == []  # packed once


@pytest.mark.django_db(transaction=True)
def test_a_pack_killed_half_way_is_finished_by_the_next_run_and_its_leftover_dropped():
    today = timezone.now().astimezone(dt.UTC).date()
    finished = today - dt.timedelta(days=2)
    partition = f"tracking_ping_p{finished:%Y%m%d}"
    with connection.cursor() as cursor:  # a day never packed (an earlier test may have packed it)
        cursor.execute(f'ALTER INDEX "{partition}_pkey" RESET (fillfactor)')
        cursor.execute(f'COMMENT ON INDEX "{partition}_pkey" IS NULL')
    day_of_uploads(day=finished, couriers=[uuid.uuid4() for _ in range(20)], uploads=10)
    before = key_pages(finished)
    with connection.cursor() as cursor:
        # What a run killed inside REINDEX CONCURRENTLY leaves: the fillfactor already set,
        # the key not rebuilt, and an invalid copy of it (a failed concurrent build).
        cursor.execute(f'ALTER INDEX "{partition}_pkey" SET (fillfactor = 100)')
        try:  # unique on the courier alone: the build fails, and leaves the index invalid
            cursor.execute(f'CREATE UNIQUE INDEX CONCURRENTLY "{partition}_pkey_ccnew" ON "{partition}" (courier_id)')
        except IntegrityError:
            pass
        cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass", [f"{partition}_pkey_ccnew"])
        assert cursor.fetchone() == (False,)

    packed = ping_partitions_pack(today=today)

    assert partition in packed
    assert key_pages(finished) < before * 0.7
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE %s", [f"{partition}_pkey_ccnew%"])
        assert cursor.fetchone() == (0,)


@pytest.mark.django_db(transaction=True)
def test_the_trail_reads_the_courier_key_not_the_whole_day(courier):
    from tests.support.builders import OrderFactory

    now = timezone.now()
    order = OrderFactory(courier=courier, status="in_transit", assigned_at=now - dt.timedelta(minutes=30))
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a tiny table: make the planner show the index it would use
        query, params = order_trail_list(order=order).query.sql_with_params()
        cursor.execute(f"EXPLAIN {query}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")

    assert "_pkey" in plan and "courier_id" in plan


@pytest.mark.django_db
def test_a_ping_row_carries_no_alignment_padding():
    """The row's size is its header plus each value's own size: the column order leaves no
    gap for alignment. A ping on its way to an order (every column but `suspect_reason` and
    `attributes`) is 130 bytes today, 136 in its page: 32 of header (23 fixed, a 2-byte
    null bitmap for 14 columns, aligned to 8) and 98 of values."""
    from orders.models import OrderStatus
    from tracking.services.enrichment import OrderLeg

    now = timezone.now()
    pings_store(
        pings=[
            EnrichedPing(
                event_id=uuid.uuid4(), courier_id=uuid.uuid4(), recorded_at=now, received_at=now,
                lat=-23.56, lon=-46.65, accuracy_m=5.0, speed_mps=4.2, heading_deg=90.0,
                legs=[OrderLeg(uuid.uuid4(), OrderStatus.IN_TRANSIT, 1_234.5, 270)],
            )
        ]
    )  # fmt: skip
    with connection.cursor() as cursor:
        # A dropped column keeps its place in the null bitmap.
        cursor.execute(
            "SELECT attname, attisdropped FROM pg_attribute WHERE attrelid = 'tracking_ping'::regclass "
            "AND attnum > 0 ORDER BY attnum"
        )
        attributes = cursor.fetchall()
        values = " + ".join(f'coalesce(pg_column_size(p."{name}"), 0)' for name, dropped in attributes if not dropped)
        cursor.execute(f"SELECT pg_column_size(p.*), {values} FROM tracking_ping p")
        row, values_size = cursor.fetchone()

    header = 23 + (len(attributes) + 7) // 8  # fixed part and null bitmap, then aligned to 8
    assert row == -(-header // 8) * 8 + values_size
    assert (row, values_size) == (130, 98)


def enriched(*, event_id: uuid.UUID, courier_id: uuid.UUID, recorded_at: dt.datetime) -> EnrichedPing:
    return EnrichedPing(
        event_id=event_id, courier_id=courier_id, recorded_at=recorded_at, received_at=timezone.now(),
        lat=-23.56, lon=-46.65, accuracy_m=5.0,
    )  # fmt: skip


def record_in_thread(*, courier_id: uuid.UUID, ping: dict, then=None) -> tuple[threading.Thread, list]:
    """Record `ping` as a worker does, in a transaction of another thread (its own database
    connection); run `then` inside that transaction before it commits, or roll it back if
    `then` raises. The outcome is the number of pings stored, or the exception."""
    outcome: list = []

    def run():
        try:
            with transaction.atomic():
                outcome.append(ping_batch_record(courier_id=courier_id, received_at=timezone.now(), pings=[ping]))
                if then:
                    then()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            outcome.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def lock_wait_or_done(*, thread: threading.Thread) -> None:
    """Until `thread`'s insert waits on a lock, or it has finished without waiting."""
    with database_connect(autocommit=True) as observer:
        wait_for(lambda: lock_waiters(observer) or not thread.is_alive(), timeout=30,
                 message="the second writer waits on the first")  # fmt: skip


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first_commits", [True, False], ids=["first commits", "first rolls back"])
def test_two_workers_racing_on_one_event_store_it_once(courier, first_commits):
    """Two writers on their own connections store two copies of one event (the device time
    written to the microsecond, then to the millisecond), the second while the first has not
    committed yet: one copy is stored, the first writer's if it commits, else the second's."""
    courier_id, event_id = courier.id, uuid.uuid4()
    sent_at = timezone.now().replace(microsecond=123456)
    first_copy = {"event_id": str(event_id), "recorded_at": sent_at.isoformat(), "lat": -23.56, "lon": -46.65}
    second_copy = {**first_copy, "recorded_at": sent_at.replace(microsecond=123000).isoformat()}
    release = threading.Event()

    def hold_until_released():
        assert release.wait(30)
        if not first_commits:
            raise RuntimeError("rolled back")

    first, first_outcome = record_in_thread(courier_id=courier_id, ping=first_copy, then=hold_until_released)
    wait_for(lambda: first_outcome, timeout=30, message="the first writer's insert")
    second, second_outcome = record_in_thread(courier_id=courier_id, ping=second_copy)
    lock_wait_or_done(thread=second)
    release.set()
    first.join(30)
    second.join(30)

    stored = list(Ping.objects.filter(courier_id=courier_id, event_id=event_id).values_list("recorded_at", flat=True))
    winner = first_copy if first_commits else second_copy
    assert stored == [dt.datetime.fromisoformat(winner["recorded_at"])]
    assert first_outcome[0] == 1 and second_outcome == [0 if first_commits else 1]


@pytest.mark.django_db
def test_copies_of_one_event_in_one_batch_are_stored_once_and_the_earliest_time_kept():
    courier_id, event_id = uuid.uuid4(), uuid.uuid4()
    now = timezone.now()
    copies = [
        enriched(event_id=event_id, courier_id=courier_id, recorded_at=now - dt.timedelta(seconds=s)) for s in (3, 9, 3)
    ]
    other = enriched(event_id=event_id, courier_id=uuid.uuid4(), recorded_at=now)  # another courier's event id

    stored = pings_store(pings=[*copies, other])

    assert sorted(p.courier_id for p in stored) == sorted([courier_id, other.courier_id])
    assert list(Ping.objects.filter(courier_id=courier_id).values_list("recorded_at", flat=True)) == [
        now - dt.timedelta(seconds=9)
    ]
    assert Ping.objects.filter(courier_id=other.courier_id).count() == 1


@pytest.mark.django_db
def test_an_event_is_remembered_for_the_acceptance_window_and_forgotten_after_it():
    from tracking.models import PingEvent
    from tracking.services.storage import ping_events_prune

    keep = dt.timedelta(seconds=settings.TRACKING["EVENT_IDENTITY_KEEP_S"])
    now = timezone.now()
    courier_id = uuid.uuid4()
    inside = enriched(event_id=uuid.uuid4(), courier_id=courier_id, recorded_at=now - keep + dt.timedelta(hours=1))
    outside = enriched(event_id=uuid.uuid4(), courier_id=courier_id, recorded_at=now - keep - dt.timedelta(hours=1))
    pings_store(pings=[inside, outside])

    assert ping_events_prune(now=now, chunk=1) == 1

    assert list(PingEvent.objects.values_list("event_id", flat=True)) == [inside.event_id]
    # Inside the window a copy with another time is still refused; the forgotten event's is
    # stored again: past the window no copy of it can be accepted any more.
    again = [
        enriched(event_id=p.event_id, courier_id=courier_id, recorded_at=p.recorded_at + dt.timedelta(minutes=1))
        for p in (inside, outside)
    ]
    assert [p.event_id for p in pings_store(pings=again)] == [outside.event_id]
