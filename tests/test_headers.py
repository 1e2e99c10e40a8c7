"""Headers and pages: a Content-Security-Policy on every page, and the API docs load
nothing from another site."""

from __future__ import annotations

import re

import pytest

from tests.support.builders import OrderFactory


def policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {d.split()[0]: d.strip() for d in header.split(";") if d.strip()}


@pytest.mark.django_db
def test_pages_carry_a_policy_that_allows_only_our_own_scripts(client, staff):
    client.force_login(staff)
    for url in (f"/t/{OrderFactory().tracking_code}", "/backoffice/", "/api/docs/", "/admin/", "/accounts/login/"):
        directives = policy(client.get(url))
        assert directives["script-src"] == "script-src 'self'", url
        assert "'unsafe-inline'" not in directives.get("style-src", "") and "'unsafe-eval'" not in str(directives)
        assert directives["frame-ancestors"] == "frame-ancestors 'none'"
        assert directives["object-src"] == "object-src 'none'"


@pytest.mark.django_db
def test_pages_have_no_inline_scripts(client, staff):
    client.force_login(staff)
    for url in (f"/t/{OrderFactory().tracking_code}", "/backoffice/", "/api/docs/"):
        html = client.get(url).content.decode()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (url, tag)


@pytest.mark.django_db
def test_the_api_docs_load_their_assets_from_this_site(client):
    html = client.get("/api/docs/").content.decode()

    assert "swagger-ui" in html
    assert not re.search(r'(src|href)="(https?:)?//', html), "no asset from a CDN"
