"""API clients: logging in as the courier app does, and a client carrying a token."""

from __future__ import annotations

from rest_framework.test import APIClient

from tests.support.builders import PASSWORD


def token_post(username: str, password: str = PASSWORD, *, client: APIClient | None = None, **extra):
    """`POST /api/v1/auth/token` as the courier app logs in; the response, whatever it is."""
    body = {"username": username, "password": password, **extra}
    return (client or APIClient()).post("/api/v1/auth/token", body, format="json")


def token_login(username: str, password: str = PASSWORD, **extra) -> dict:
    """A successful login's body: the token and its expiry."""
    response = token_post(username, password, **extra)
    assert response.status_code == 200, response.content
    return response.json()


def token_client(token: str) -> APIClient:
    """A client that sends `token` as the courier app does."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def client_for(user) -> APIClient:
    """A client with a fresh token of `user`; anonymous for None."""
    if user is None:
        return APIClient()
    from couriers.services import api_token_create

    _, token = api_token_create(user=user)
    return token_client(token)
