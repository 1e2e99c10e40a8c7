"""The backoffice's live map page (its data comes over `/ws/fleet/` and the REST API)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render


@staff_member_required(login_url=settings.LOGIN_URL)
def backoffice_map(request):
    return render(
        request,
        "tracking/backoffice.html",
        {"tile_url": settings.MAP_TILE_URL, "stale_after_s": settings.TRACKING["STALE_AFTER_S"]},
    )
