"""Consumer notifications: the outbox rows each change writes (exactly once), and their
delivery through the webhook and SNS backends, in process. The paths through a real
worker are in tests/e2e/test_notifications_e2e.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from orders.models import Notification
from orders.notification_backends import DeliveryFailed
from orders.notifications import notification_deliver
from tests.support.aws import SnsEmulator
from tests.support.builders import SAO_PAULO, OrderFactory, order_act, ping, pings_record
from tests.support.database import database_connect, lock_waiters_wait
from tests.support.network import free_port
from tests.support.waiting import wait_for

SECRET = "partner-secret-123"


def kinds(order) -> list[str]:
    return list(Notification.objects.filter(order=order).order_by("id").values_list("kind", flat=True))


def at_destination(n: int = 1, *, seconds_ago: float = 0, lat_offset: float = 0.0, **extra) -> list[dict]:
    return [ping(seconds_ago=seconds_ago + n - i, lat=SAO_PAULO[0] + lat_offset, lon=SAO_PAULO[1], **extra)
            for i in range(n)]  # fmt: skip


# --- What is written, once --------------------------------------------------------------


@pytest.mark.django_db
def test_each_courier_action_writes_its_notification_once_even_when_resent(courier, order):
    ids = {t: uuid.uuid4() for t in ("assigned", "started", "delivered")}
    for event_type in ("assigned", "started", "delivered"):
        order_act(order, courier, event_type, event_id=ids[event_type], lat=-23.60)
        assert order_act(order, courier, event_type, event_id=ids[event_type], lat=-23.60).replayed

    assert kinds(order) == ["assigned", "on_the_way", "delivered"]
    assert set(Notification.objects.filter(order=order).values_list("status", flat=True)) == {"pending"}


@pytest.mark.django_db
def test_a_refused_action_writes_no_notification(courier, other_courier, order):
    order_act(order, courier, "assigned")
    with pytest.raises(Exception, match="Cannot apply"):
        order_act(order, other_courier, "assigned")

    assert kinds(order) == ["assigned"]


@pytest.mark.django_db
def test_a_burst_of_pings_near_the_destination_notifies_arriving_once(courier, in_transit_order):
    pings_record(courier, at_destination(5, lat_offset=0.001))  # about 110 m away
    pings_record(courier, at_destination(5))

    assert kinds(in_transit_order) == ["arriving"]


@pytest.mark.django_db
def test_pings_far_from_the_destination_do_not_notify_arriving(courier, in_transit_order):
    pings_record(courier, at_destination(3, lat_offset=0.02))  # about 2.2 km away

    assert kinds(in_transit_order) == []


@pytest.mark.django_db
@override_settings(ARRIVING_RADIUS_M=50, ARRIVING_ETA_S=120)
def test_arriving_is_notified_when_the_eta_drops_under_the_threshold(courier, in_transit_order):
    pings_record(courier, at_destination(1, seconds_ago=60, lat_offset=0.0055))  # about 610 m: ETA 132 s
    assert kinds(in_transit_order) == []

    pings_record(courier, at_destination(1, lat_offset=0.0036))  # about 400 m: ETA 87 s, outside 50 m
    assert kinds(in_transit_order) == ["arriving"]


@pytest.mark.django_db
@override_settings(ARRIVING_RADIUS_M=300, ARRIVING_ETA_S=0)
def test_arriving_is_notified_inside_the_radius(courier, in_transit_order):
    pings_record(courier, at_destination(1, seconds_ago=60, lat_offset=0.0036))  # about 400 m
    assert kinds(in_transit_order) == []

    pings_record(courier, at_destination(1, lat_offset=0.0025))  # about 280 m
    assert kinds(in_transit_order) == ["arriving"]


@pytest.mark.django_db
def test_late_pings_recorded_before_the_start_never_notify_arriving(courier, in_transit_order):
    # The delivery started 5 minutes ago; these were recorded at the store 6 minutes ago
    # (next to this destination) and only arrive now.
    pings_record(courier, at_destination(3, seconds_ago=360))

    assert kinds(in_transit_order) == []


@pytest.mark.django_db
def test_an_order_not_started_yet_is_not_arriving(courier):
    order = OrderFactory(courier=courier, status="assigned", assigned_at=timezone.now())
    pings_record(courier, at_destination(2))

    assert kinds(order) == []


@pytest.mark.django_db
def test_a_gps_glitch_near_the_destination_does_not_notify_arriving(courier, in_transit_order):
    pings_record(courier, [ping(seconds_ago=5, lat=SAO_PAULO[0] + 0.2, lon=SAO_PAULO[1])])  # 22 km away
    pings_record(courier, at_destination(1))  # 22 km in 4 s: an implausible jump

    assert kinds(in_transit_order) == []


@pytest.mark.django_db
def test_a_lone_unconfirmed_fix_near_the_destination_sends_no_arriving(courier, in_transit_order):
    # Nothing before it to agree with, and the accuracy of a network position, not of a GPS fix.
    pings_record(courier, at_destination(1, accuracy_m=60.0))

    assert kinds(in_transit_order) == []


@pytest.mark.django_db
def test_a_lone_fix_near_the_destination_notifies_arriving_once_a_second_fix_confirms_it(courier, in_transit_order):
    pings_record(courier, at_destination(1, seconds_ago=10, accuracy_m=60.0))
    pings_record(courier, at_destination(1, lat_offset=0.0002, accuracy_m=60.0))  # 22 m on, 10 s later

    assert kinds(in_transit_order) == ["arriving"]


@pytest.mark.django_db
def test_a_lone_fix_with_a_good_accuracy_near_the_destination_notifies_arriving(courier, in_transit_order):
    pings_record(courier, at_destination(1, accuracy_m=8.0))

    assert kinds(in_transit_order) == ["arriving"]


@pytest.mark.django_db
def test_starting_next_to_the_consumer_notifies_on_the_way_then_arriving(courier, order):
    order_act(order, courier, "assigned", seconds_ago=600, lat=-23.60)
    order_act(order, courier, "started", lat=SAO_PAULO[0])

    assert kinds(order) == ["assigned", "on_the_way", "arriving"]


@pytest.mark.django_db(transaction=True)
def test_two_racing_batches_near_the_destination_notify_arriving_once(courier, in_transit_order):
    """Both batches wait on a lock held on the courier's last-location row, then race to
    insert the same (order, arriving) row."""
    pings_record(courier, at_destination(1, seconds_ago=60, lat_offset=0.01))
    errors: list[Exception] = []
    with database_connect() as blocker:
        blocker.execute("SELECT 1 FROM tracking_courierlastlocation FOR UPDATE")

        def run(pings):
            try:
                pings_record(courier, pings)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=run, args=(at_destination(3),)) for _ in range(2)]
        for t in threads:
            t.start()

        lock_waiters_wait(blocker, count=2, timeout=10, message="both batches to wait on the lock")
        blocker.rollback()
        for t in threads:
            t.join(timeout=10)

    assert errors == []
    assert kinds(in_transit_order) == ["arriving"]


# --- Delivery ---------------------------------------------------------------------------


class Receiver:
    """A partner's webhook endpoint: verifies the signature the way a partner would."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.delay_s = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = self.headers["X-Ze-Timestamp"]
                expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
                receiver.requests.append(
                    {
                        "body": json.loads(body),
                        "signature_ok": hmac.compare_digest(self.headers["X-Ze-Signature"], f"sha256={expected}"),
                        "age_s": time.time() - int(timestamp),
                        "idempotency_key": self.headers["Idempotency-Key"],
                    }
                )
                time.sleep(receiver.delay_s)
                self.send_response(receiver.status)
                self.send_header("X-Message-Id", f"partner-{len(receiver.requests)}")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/ze/notifications"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver():
    receiver = Receiver()
    with override_settings(
        NOTIFICATIONS_BACKEND="webhook", NOTIFICATIONS_WEBHOOK_URL=receiver.url, NOTIFICATIONS_WEBHOOK_SECRET=SECRET
    ):
        yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def assigned(courier) -> Notification:
    """An outbox row as order_transition writes it, but not enqueued: these tests deliver it
    themselves (a session worker started by the e2e tests must not take it first)."""
    order = OrderFactory(courier=courier, status="assigned", assigned_at=timezone.now())
    return Notification.objects.create(order=order, kind="assigned")


@pytest.mark.django_db
def test_the_webhook_is_signed_and_carries_the_message_and_tracking_link(receiver, assigned):
    assert notification_deliver(notification_id=assigned.id) == "sent"

    [request] = receiver.requests
    assert request["signature_ok"] is True
    assert 0 <= request["age_s"] < 60
    body = request["body"]
    assert body["kind"] == "assigned" and body["order_id"] == str(assigned.order_id)
    assert body["tracking_url"] == f"http://127.0.0.1:8000/t/{assigned.order.tracking_code}"
    assert "Seu pedido foi aceito por Ana." in body["text"] and "Ana accepted your order." in body["text"]
    assert body["tracking_url"] in body["text"]
    assert request["idempotency_key"] == f"{assigned.order_id}:assigned"
    assigned.refresh_from_db()
    assert (assigned.status, assigned.attempts, assigned.error) == ("sent", 1, "")
    assert assigned.sent_at is not None and assigned.provider_message_id == "partner-1"


@pytest.mark.django_db
def test_a_retried_delivery_of_a_sent_notification_sends_nothing_more(receiver, assigned):
    assert notification_deliver(notification_id=assigned.id) == "sent"
    assert notification_deliver(notification_id=assigned.id) == "skipped"

    assert len(receiver.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_on_one_notification_send_it_once(receiver, assigned):
    receiver.delay_s = 0.5  # the first sender is still talking to the partner
    outcomes: list[str] = []

    def deliver():
        outcomes.append(notification_deliver(notification_id=assigned.id))
        connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)

    assert sorted(outcomes) == ["sent", "skipped"]
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_a_failing_partner_leaves_the_error_visible_until_resent(receiver, assigned, staff_api):
    receiver.status = 503
    with pytest.raises(DeliveryFailed):
        notification_deliver(notification_id=assigned.id, final_attempt=False)
    [row] = staff_api.get(f"/api/v1/orders/{assigned.order_id}/notifications").json()
    assert (row["status"], row["attempts"], row["sent_at"]) == ("pending", 1, None)
    assert "503" in row["error"]

    assert notification_deliver(notification_id=assigned.id, final_attempt=True) == "failed"
    [row] = staff_api.get(f"/api/v1/orders/{assigned.order_id}/notifications").json()
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert "503" in row["error"]

    receiver.status = 200
    out = StringIO()
    call_command("resend_failed_notifications", stdout=out)
    assert "1 sent" in out.getvalue()
    [row] = staff_api.get(f"/api/v1/orders/{assigned.order_id}/notifications").json()
    assert (row["status"], row["attempts"], row["error"]) == ("sent", 3, "")
    assert len(receiver.requests) == 3 and all(r["signature_ok"] for r in receiver.requests)


@pytest.mark.django_db
def test_an_unreachable_partner_is_a_failed_attempt(assigned):
    with override_settings(
        NOTIFICATIONS_BACKEND="webhook",
        NOTIFICATIONS_WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/closed",
        NOTIFICATIONS_WEBHOOK_SECRET=SECRET,
    ):
        assert notification_deliver(notification_id=assigned.id) == "failed"

    assigned.refresh_from_db()
    assert assigned.status == "failed" and "webhook request failed" in assigned.error


@pytest.mark.django_db
def test_sns_publishes_to_the_topic_with_order_and_kind_attributes(sns, assigned, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with override_settings(
        NOTIFICATIONS_BACKEND="sns", NOTIFICATIONS_SNS_TOPIC_ARN=sns.topic_arn, AWS_ENDPOINT_URL_SNS=sns.endpoint
    ):
        assert notification_deliver(notification_id=assigned.id) == "sent"

    [message] = wait_for(sns.received, timeout=5, message="the message in the subscribed queue")
    assert message["MessageAttributes"]["kind"] == {"Type": "String", "Value": "assigned"}
    assert message["MessageAttributes"]["order_id"] == {"Type": "String", "Value": str(assigned.order_id)}
    assert message["Subject"] == "Zé: Seu pedido foi aceito por Ana."
    assert f"/t/{assigned.order.tracking_code}" in message["Message"]
    assigned.refresh_from_db()
    assert assigned.provider_message_id == message["MessageId"]
    assert SnsEmulator.TOPIC in sns.topic_arn


@pytest.mark.django_db
def test_the_log_backend_marks_notifications_sent(assigned, caplog):
    with override_settings(NOTIFICATIONS_BACKEND="log"), caplog.at_level("INFO"):
        assert notification_deliver(notification_id=assigned.id) == "sent"

    assert f"assigned for order {assigned.order_id}" in caplog.text


# --- Who sees them ----------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_see_an_orders_notifications(staff_api, courier, order):
    order_act(order, courier, "assigned", seconds_ago=10)
    order_act(order, courier, "started")

    response = staff_api.get(f"/api/v1/orders/{order.id}/notifications")

    assert response.status_code == 200
    assert [n["kind"] for n in response.json()] == ["assigned", "on_the_way"]
    assert set(response.json()[0]) == {"kind", "status", "created_at", "sent_at", "attempts", "error"}
    assert response.json()[0]["status"] == "pending"


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["courier_api", "other_courier_api", "anonymous_api"])
def test_couriers_and_anonymous_cannot_see_notifications(request, who, courier, order):
    order_act(order, courier, "assigned")
    response = request.getfixturevalue(who).get(f"/api/v1/orders/{order.id}/notifications")

    assert response.status_code in (401, 403)


@pytest.mark.django_db
def test_notifications_of_an_unknown_order_are_404(staff_api):
    assert staff_api.get(f"/api/v1/orders/{uuid.uuid4()}/notifications").status_code == 404


@pytest.mark.django_db
def test_the_admin_lists_notifications(client, staff, assigned):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)

    response = client.get("/admin/orders/notification/")

    assert response.status_code == 200
    page = response.content.decode()
    assert str(assigned.order_id) in page and "pending" in page
