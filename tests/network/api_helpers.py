"""Clients for API tests: as an agent (site key), a person (session or token), or nobody."""
from rest_framework.test import APIClient

from network.services import issue_user_token


def agent_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def person_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_user_token(user).plaintext}")
    return client
