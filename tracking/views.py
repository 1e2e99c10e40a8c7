"""Plain Django pages: the backoffice's live map (its data comes over `/ws/fleet/` and the
REST API) and the consumer's tracking page (no login: the code in the URL is the secret)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from tracking.api import TrackingLinkThrottle
from tracking.selectors import order_public_state_get
from tracking.serializers import PublicOrderStateSerializer


@staff_member_required(login_url=settings.LOGIN_URL)
def backoffice_map(request):
    return render(
        request,
        "tracking/backoffice.html",
        {"tile_url": settings.MAP_TILE_URL, "stale_after_s": settings.TRACKING["STALE_AFTER_S"]},
    )


@require_GET
@never_cache
def order_tracking_page(request, tracking_code: str):
    # Same budget as the tracking link: the page answers 404 for unknown codes too.
    throttle = TrackingLinkThrottle()
    if not throttle.allow_request(request, None):
        return HttpResponse(
            "Muitas tentativas. Tente de novo em instantes.",
            status=429,
            headers={"Retry-After": str(int(throttle.wait() or 1))},
        )
    state = order_public_state_get(tracking_code=tracking_code)
    if state is None:
        raise Http404("Pedido não encontrado.")
    return render(
        request,
        "tracking/track.html",
        {
            "state": PublicOrderStateSerializer(state).data,
            "tracking_code": tracking_code,
            "map_tile_url": settings.MAP_TILE_URL,
            "map_tile_attribution": settings.MAP_TILE_ATTRIBUTION,
            "poll_ms": int(settings.TRACKING_PAGE_POLL_S * 1000),
        },
    )
