"""Who may call what: every HTTP route (from the URL configuration) and every websocket
route (from the routing) against every kind of caller. A route, or a method on a route,
without an entry here fails `test_every_route_and_method_has_an_entry`.

The callers: anonymous; courier A, who carries order X; courier B, who carries order Y;
a superuser; two consumers, who hold only the tracking code of order X or of order Y; and
the three backoffice roles (the groups of `tracking/migrations/0010_roles.py`): support,
operations lead, engineer.
Routes with an order or courier in the URL name order X and courier A. Routes with a
tracking code get the caller's own code, or a well-formed code nobody was given."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from tests.support.api import client_for
from tests.support.builders import CourierFactory, OrderFactory, UserFactory
from tests.support.roles import role_user
from tracking.routing import websocket_urlpatterns

ACTORS = (
    "anonymous",
    "courier_a",
    "courier_b",
    "staff",
    "consumer_x",
    "consumer_y",
    "support",
    "operations",
    "engineer",
)
ROLES = {"support": "Support", "operations": "Operations lead", "engineer": "Engineer"}
GUESSED_CODE = "A" * 32
ADMIN_PREFIX = "admin/"


def row(anonymous, courier_a, courier_b, staff, consumer_x, consumer_y, support=None, operations=None, engineer=None):
    """Support and operations leads default to what staff get, engineers to what a courier
    who is not concerned gets (B)."""
    support = staff if support is None else support
    operations = staff if operations is None else operations
    engineer = courier_b if engineer is None else engineer
    values = (anonymous, courier_a, courier_b, staff, consumer_x, consumer_y, support, operations, engineer)
    return dict(zip(ACTORS, values, strict=True))


def everyone(status: int) -> dict[str, int]:
    return row(*(status,) * len(ACTORS))


STAFF_ONLY = row(401, 403, 403, 200, 401, 401)  # staff: the roles that read orders and couriers
OWNER_OR_STAFF = row(401, 200, 404, 200, 401, 401, engineer=403)  # another courier learns nothing: 404
SIGNED_IN = row(401, 204, 204, 204, 401, 401, engineer=204)
# Anonymous to the login page; a signed-in user without the right is refused.
PAGE_STAFF_ONLY = row(302, 403, 403, 200, 302, 302)
CODE_HOLDER = row(404, 404, 404, 404, 200, 200, engineer=404)  # consumers open their own order only

# route pattern -> method -> expected status per caller. POSTs send an empty JSON body, so
# a caller the route lets through gets 400 (the body is checked after the permission).
HTTP = {
    "healthz": {"GET": everyone(200)},
    "readyz": {"GET": everyone(200)},
    # Engineers and superusers (session), or the metrics token.
    "metrics": {"GET": row(403, 403, 403, 200, 403, 403, support=403, operations=403, engineer=200)},
    "api/v1/auth/token": {"POST": everyone(400)},
    "api/v1/auth/logout": {"POST": SIGNED_IN},
    "api/v1/auth/logout-all": {"POST": SIGNED_IN},
    "api/v1/couriers": {"GET": STAFF_ONLY, "POST": row(401, 403, 403, 400, 401, 401, support=403)},
    "api/v1/couriers/<uuid:courier_id>/location": {"GET": STAFF_ONLY},
    "api/v1/orders": {
        "GET": row(401, 200, 200, 200, 401, 401, engineer=403),
        # The order system's account (orders.add_order); no backoffice role.
        "POST": row(401, 403, 403, 400, 401, 401, support=403, operations=403),
    },
    "api/v1/orders/<uuid:order_id>": {"GET": OWNER_OR_STAFF},
    "api/v1/orders/<uuid:order_id>/events": {"POST": row(401, 400, 404, 403, 401, 401, engineer=403)},
    # The operations lead is let through: 409, the superuser (asked first) cancelled it.
    "api/v1/orders/<uuid:order_id>/cancel": {"POST": row(401, 403, 403, 200, 401, 401, support=403, operations=409)},
    "api/v1/orders/<uuid:order_id>/location": {"GET": OWNER_OR_STAFF},
    "api/v1/orders/<uuid:order_id>/track": {"GET": STAFF_ONLY},
    "api/v1/orders/<uuid:order_id>/notifications": {"GET": STAFF_ONLY},
    "api/v1/track/<tracking_code:tracking_code>": {"GET": CODE_HOLDER},
    "api/v1/locations": {"POST": row(401, 400, 400, 403, 401, 401, engineer=403)},
    "t/<tracking_code:tracking_code>": {"GET": CODE_HOLDER},
    "api/schema/": {"GET": everyone(200)},
    "api/docs/": {"GET": everyone(200)},
    # The form again, with its errors (Django's login view takes PUT as POST; both throttled).
    "accounts/login/": {"GET": everyone(200), "POST": everyone(200), "PUT": everyone(200)},
    "accounts/logout/": {"POST": everyone(200)},
    "backoffice/": {"GET": PAGE_STAFF_ONLY},
}
# The admin: its index for every backoffice account (is_staff); each model's list for the
# roles that may view that model (Django's view or change permission), 403 for the others.
ADMIN_INDEX = row(302, 302, 302, 200, 302, 302, engineer=200)
SUPPORT_READS = {"couriers.courier", "couriers.apitoken", "orders.order", "orders.notification",
                 "tracking.orderlastlocation", "tracking.courierlastlocation"}  # fmt: skip
ENGINEER_READS = {"tracking.ping", "tracking.pingdeadletter", "tracking.pingbatchdeadletter"}

WEBSOCKETS = {
    "ws/fleet/": row(False, False, False, True, False, False, engineer=False),
    "ws/track/<tracking_code:tracking_code>/": row(False, False, False, False, True, True, False, False, False),
}


def http_routes(patterns=None, prefix: str = "") -> dict[str, object]:
    """Every route of the URL configuration (pattern -> view), admin's as one prefix."""
    routes: dict[str, object] = {}
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        pattern = prefix + str(entry.pattern)
        if pattern.startswith(ADMIN_PREFIX):  # the admin and its (throttled) login page
            routes[ADMIN_PREFIX] = None
        elif isinstance(entry, URLResolver):
            routes.update(http_routes(entry.url_patterns, pattern))
        elif isinstance(entry, URLPattern):
            routes[pattern] = entry.callback
    return routes


def view_methods(view) -> set[str]:
    cls = getattr(view, "cls", None) or getattr(view, "view_class", None)
    if cls is None:
        return {"GET"}
    return {m.upper() for m in cls.http_method_names if hasattr(cls, m) and m not in ("options", "head")}


def test_every_route_and_method_has_an_entry():
    routes = http_routes()

    assert set(routes) == {*HTTP, ADMIN_PREFIX}, "add the new route to the matrix"
    for pattern, view in routes.items():
        if pattern != ADMIN_PREFIX and view_methods(view) != {"GET"}:
            assert view_methods(view) == set(HTTP[pattern]), pattern
    assert {str(p.pattern) for p in websocket_urlpatterns} == set(WEBSOCKETS)


class World:
    """Two couriers with an order each, staff, and each caller's client."""

    def __init__(self):
        self.courier_a, self.courier_b = CourierFactory(), CourierFactory()
        self.staff = UserFactory(is_staff=True, is_superuser=True)
        now = timezone.now()
        self.order_x = OrderFactory(courier=self.courier_a, status="assigned", assigned_at=now)
        self.order_y = OrderFactory(courier=self.courier_b, status="assigned", assigned_at=now)
        self.users = {"courier_a": self.courier_a.user, "courier_b": self.courier_b.user, "staff": self.staff}
        self.users.update({actor: role_user(role) for actor, role in ROLES.items()})
        self.codes = {"consumer_x": self.order_x.tracking_code, "consumer_y": self.order_y.tracking_code}

    def client(self, actor: str) -> APIClient:
        user = self.users.get(actor)
        if user is None:
            return APIClient()
        client = client_for(user)
        client.force_login(user)  # the pages and the admin use the session
        return client

    def url(self, pattern: str, actor: str) -> str:
        return "/" + (
            pattern.replace("<uuid:order_id>", str(self.order_x.id))
            .replace("<uuid:courier_id>", str(self.courier_a.id))
            .replace("<tracking_code:tracking_code>", self.codes.get(actor, GUESSED_CODE))
        )


def call(client: APIClient, method: str, url: str) -> int:
    if method == "GET":
        return client.get(url).status_code
    return getattr(client, method.lower())(url, {}, format="json").status_code


@pytest.mark.django_db
@pytest.mark.parametrize(("pattern", "method"), [(p, m) for p, methods in HTTP.items() for m in methods])
def test_http_route(pattern, method):
    world = World()

    seen = {actor: call(world.client(actor), method, world.url(pattern, actor)) for actor in ACTORS}

    assert seen == HTTP[pattern][method]


def admin_list_expected(model) -> dict[str, int]:
    label = model._meta.label_lower
    return row(
        302, 302, 302, 200, 302, 302,
        support=200 if label in SUPPORT_READS else 403,
        operations=200 if label in SUPPORT_READS else 403,
        engineer=200 if label in ENGINEER_READS else 403,
    )  # fmt: skip


@pytest.mark.django_db
def test_admin_shows_each_role_its_models_only():
    world = World()

    assert {actor: world.client(actor).get("/admin/").status_code for actor in ACTORS} == ADMIN_INDEX
    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        seen = {actor: world.client(actor).get(url).status_code for actor in ACTORS}
        assert seen == admin_list_expected(model), url


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pattern", list(WEBSOCKETS))
def test_websocket_route(pattern):
    from ze_tracking.asgi import application

    world = World()
    headers = {}
    for actor in ACTORS:
        headers[actor] = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
        if actor in world.users:
            client = Client()
            client.force_login(world.users[actor])
            cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
            headers[actor].append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))

    async def connects(actor: str) -> bool:
        ws = WebsocketCommunicator(application, world.url(pattern, actor), headers=headers[actor])
        connected, _ = await ws.connect()
        if connected:
            await ws.disconnect()
        return connected

    seen = {actor: async_to_sync(connects)(actor) for actor in ACTORS}

    assert seen == WEBSOCKETS[pattern]
