"""Plain Django pages: the backoffice's live map (its data comes over `/ws/fleet/` and the
REST API) and the consumer's tracking page (no login: the code in the URL is the secret)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from couriers.staff_access import second_factor_required
from infra.http.throttles import TrackingAddressThrottle, TrackingCodeThrottle, throttled
from tracking.consumers import FLEET_PERMS
from tracking.rules import tracking_rules
from tracking.tracking_link import PublicOrderStateSerializer, order_public_state_get


@login_required
@second_factor_required
# A signed-in user without the rights is refused (403), not sent to log in again.
@permission_required(FLEET_PERMS, raise_exception=True)
def backoffice_map(request):
    return render(
        request,
        "tracking/backoffice.html",
        {"config": {"tileUrl": settings.MAP_TILE_URL, "staleAfterS": tracking_rules().stale_after_s}},
    )


@require_GET
@never_cache
# Same budgets as the tracking link: the page answers 404 for unknown codes too.
@throttled(TrackingCodeThrottle, TrackingAddressThrottle)
def order_tracking_page(request, tracking_code: str):
    state = order_public_state_get(tracking_code=tracking_code)
    if state is None:
        raise Http404("Pedido não encontrado.")
    return render(
        request,
        "tracking/track.html",
        {
            "state": PublicOrderStateSerializer(state).data,
            "config": {
                "stateUrl": reverse("tracking-link", kwargs={"tracking_code": tracking_code}),
                "socketUrl": f"/ws/track/{tracking_code}/",  # the converter admits URL-safe characters only
                "tileUrl": settings.MAP_TILE_URL,
                "tileAttribution": settings.MAP_TILE_ATTRIBUTION,
                "intervalMs": int(settings.TRACKING_PAGE_POLL_S * 1000),
                "iconPath": static("vendor/leaflet/images/"),
            },
        },
    )
