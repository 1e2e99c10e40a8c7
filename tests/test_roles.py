"""The backoffice roles (support, operations lead, engineer): Django groups with model
permissions, checked by the API, the admin's actions, the fleet socket and /metrics; never
`is_staff`, which only opens the admin's door."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client

from couriers.models import ApiToken
from couriers.services import api_token_create
from orders.models import Notification, NotificationStatus, OrderStatus
from tests.support.builders import CourierFactory, OrderFactory, UserFactory
from tests.support.roles import role_user

ROOT = Path(__file__).resolve().parent.parent


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def admin_action(client: Client, model: str, action: str, pk) -> None:
    client.post(f"/admin/{model}/", {"action": action, "_selected_action": [str(pk)]})


@pytest.mark.django_db
def test_the_roles_are_groups_with_their_permissions():
    perms = {
        g.name: {f"{p.content_type.app_label}.{p.codename}" for p in g.permissions.all()} for g in Group.objects.all()
    }

    assert {"Support", "Operations lead", "Engineer"} <= set(perms)
    assert {"orders.view_order", "couriers.view_courier", "orders.resend_notification",
            "couriers.revoke_courier_tokens"} <= perms["Support"]  # fmt: skip
    assert perms["Support"] < perms["Operations lead"]
    assert {"couriers.add_courier", "orders.cancel_order"} <= perms["Operations lead"] - perms["Support"]
    assert {"tracking.view_pingdeadletter", "tracking.replay_dead_letters", "tracking.view_ping",
            "tracking.view_metrics"} <= perms["Engineer"]  # fmt: skip
    assert not perms["Engineer"] & {"orders.view_order", "couriers.view_courier"}
    assert not perms["Support"] & perms["Engineer"]


@pytest.mark.django_db
def test_support_cannot_cancel_an_order_in_the_admin_and_an_operations_lead_can():
    order = OrderFactory()

    admin_action(signed_in(role_user("Support")), "orders/order", "cancel_orders", order.pk)
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING

    admin_action(signed_in(role_user("Operations lead")), "orders/order", "cancel_orders", order.pk)
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED


@pytest.mark.django_db
def test_support_logs_a_courier_out_of_the_app_and_an_engineer_cannot():
    courier = CourierFactory()
    api_token_create(user=courier.user)

    admin_action(signed_in(role_user("Engineer")), "couriers/courier", "reset_tokens", courier.pk)
    assert ApiToken.objects.filter(user=courier.user).count() == 1

    admin_action(signed_in(role_user("Support")), "couriers/courier", "reset_tokens", courier.pk)
    assert ApiToken.objects.filter(user=courier.user).count() == 0


@pytest.mark.django_db
def test_the_resend_action_is_offered_to_support_and_not_to_an_engineer():
    def actions(user) -> set[str]:
        request = type("R", (), {"user": user, "GET": {}})()
        return set(admin.site._registry[Notification].get_actions(request))

    assert "resend" in actions(role_user("Support"))
    assert "resend" not in actions(role_user("Engineer"))
    assert NotificationStatus.FAILED  # the action sends only failed ones (orders' tests)


@pytest.mark.django_db
def test_a_superuser_keeps_every_action():
    superuser = UserFactory(is_staff=True, is_superuser=True)
    request = type("R", (), {"user": superuser, "GET": {}})()

    for model, model_admin in admin.site._registry.items():
        declared = {name for name in (model_admin.actions or [])}
        assert declared <= set(model_admin.get_actions(request)), model


def test_every_admin_action_declares_its_permissions():
    for model, model_admin in admin.site._registry.items():
        for name in model_admin.actions or []:
            action = getattr(model_admin, name) if isinstance(name, str) else name
            assert getattr(action, "allowed_permissions", None), f"{model.__name__}.{name}"


def test_no_app_code_decides_by_is_staff():
    """`is_staff` opens the admin (Django checks it there); what a user may do is a permission."""
    found = []
    for folder in ("couriers", "orders", "tracking", "infra", "ze_tracking"):
        for path in (ROOT / folder).rglob("*.py"):
            # staff_access.py says who the second factor is for: admin users are among them.
            if "migrations" in path.parts or "simulator" in path.parts or path.name == "staff_access.py":
                continue
            found += [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1)
                      if re.search(r"\.is_staff\b|IsStaff|staff_member_required", line)]  # fmt: skip

    assert found == []
