"""Consumer notifications through the real path: HTTP -> order transition / ping batch ->
outbox -> Celery worker -> SNS (moto's server) -> an SQS queue subscribed to the topic."""

from __future__ import annotations

import datetime as dt
import statistics
import uuid

from django.db.models import F
from django.utils import timezone

from orders.models import Notification
from orders.notifications import notifications_pending_resend
from orders.services import order_transition
from tests.support import OUTPUT
from tests.support.api import client_for
from tests.support.builders import SAO_PAULO, OrderFactory, order_event, ping
from tests.support.waiting import wait_for


def statuses(order_id) -> dict[str, str]:
    return dict(Notification.objects.filter(order_id=order_id).values_list("kind", "status"))


def test_the_consumer_gets_each_notification_exactly_once_through_sns(worker, sns, courier, staff):
    app, backoffice = client_for(courier.user), client_for(staff)
    order = OrderFactory()

    def act(kind, lat, *, event_id=None, seconds_ago=0):
        body = order_event(kind, lat=lat, lon=SAO_PAULO[1], event_id=event_id, seconds_ago=seconds_ago)
        response = app.post(f"/api/v1/orders/{order.id}/events", body, format="json")
        assert response.status_code == 201, response.content

    act("assigned", -23.60, seconds_ago=900)
    started = uuid.uuid4()
    act("started", -23.59, event_id=started, seconds_ago=600)
    act("started", -23.59, event_id=started, seconds_ago=600)  # the app resends it
    # Two bursts inside the radius, plus late pings from the store recorded before the start.
    for burst in range(2):
        pings = [ping(seconds_ago=20 - burst * 10 - i, lat=SAO_PAULO[0] + 0.001, lon=SAO_PAULO[1]) for i in range(5)]
        assert app.post("/api/v1/locations", {"pings": pings}, format="json").status_code == 202
    late = [ping(seconds_ago=700, lat=-23.601, lon=SAO_PAULO[1])]
    assert app.post("/api/v1/locations", {"pings": late}, format="json").status_code == 202
    wait_for(lambda: "arriving" in statuses(order.id), timeout=10, message="the arriving notification")
    act("delivered", SAO_PAULO[0])

    wait_for(
        lambda: statuses(order.id) == dict.fromkeys(["assigned", "on_the_way", "arriving", "delivered"], "sent"),
        timeout=15,
        message="four notifications sent",
    )
    received = []
    wait_for(lambda: received.extend(sns.received()) or len(received) >= 4, timeout=10, message="4 SNS messages")
    assert sorted(m["MessageAttributes"]["kind"]["Value"] for m in received) == sorted(
        ["assigned", "on_the_way", "arriving", "delivered"]
    )
    assert {m["MessageAttributes"]["order_id"]["Value"] for m in received} == {str(order.id)}
    assert all(f"/t/{order.tracking_code}" in m["Message"] for m in received)

    listed = backoffice.get(f"/api/v1/orders/{order.id}/notifications").json()
    assert [(n["kind"], n["status"], n["attempts"], n["error"]) for n in listed] == [
        ("assigned", "sent", 1, ""), ("on_the_way", "sent", 1, ""), ("arriving", "sent", 1, ""),
        ("delivered", "sent", 1, ""),
    ]  # fmt: skip
    # Nothing more arrives later (a duplicate would be published within the same second).
    assert sns.received() == []
    delays = sorted(
        (n.sent_at - n.created_at).total_seconds()
        for n in Notification.objects.filter(order=order, kind__in=["assigned", "on_the_way", "delivered"])
    )
    (OUTPUT / "notification-latency.txt").write_text(
        f"status change -> sent notification (SNS emulator, real worker), seconds: {delays}, "
        f"median {statistics.median(delays):.3f}, max {max(delays):.3f}\n"
    )


def test_an_sns_outage_delays_the_notification_and_loses_nothing(worker, sns, courier, staff):
    order = OrderFactory()
    sns.stop()
    try:
        order_transition(
            order_id=order.id, courier=courier, event_type="assigned", event_id=uuid.uuid4(),
            recorded_at=timezone.now(), lat=-23.57, lon=SAO_PAULO[1],
        )  # fmt: skip

        def failed_attempt():
            [row] = client_for(staff).get(f"/api/v1/orders/{order.id}/notifications").json()
            return row["attempts"] >= 2 and row["status"] == "pending" and "SNS publish failed" in row["error"] and row

        row = wait_for(failed_attempt, timeout=20, message="failed attempts to be visible")
        assert row["sent_at"] is None
    finally:
        sns.start()  # same port, same topic and subscription

    wait_for(lambda: statuses(order.id) == {"assigned": "sent"}, timeout=30, message="the notification after recovery")
    [message] = wait_for(sns.received, timeout=10, message="the message in the queue")
    assert message["MessageAttributes"]["kind"]["Value"] == "assigned"
    notification = Notification.objects.get(order=order)
    assert notification.attempts >= 2 and notification.error == ""


def test_a_notification_whose_task_was_lost_is_sent_by_the_periodic_resend(worker, sns, courier):
    order = OrderFactory(courier=courier, status="assigned", assigned_at=timezone.now())
    # As if the broker lost the message published after commit.
    lost = Notification.objects.create(order=order, kind="assigned")
    Notification.objects.filter(id=lost.id).update(created_at=F("created_at") - dt.timedelta(minutes=15))
    fresh = Notification.objects.create(order=OrderFactory(), kind="assigned")

    assert notifications_pending_resend() == [lost.id]

    wait_for(lambda: statuses(order.id) == {"assigned": "sent"}, timeout=10, message="the lost notification sent")
    [message] = wait_for(sns.received, timeout=10, message="the message in the queue")
    assert message["MessageAttributes"]["order_id"]["Value"] == str(order.id)
    assert Notification.objects.get(id=fresh.id).status == "pending"
