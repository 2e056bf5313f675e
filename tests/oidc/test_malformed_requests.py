"""Odd input from the network gets a 4xx or a normal answer, never a 500."""

from urllib.parse import urlsplit

import pytest

from tests.conftest import authorize_query, signed_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("max_age", ["²", "١٢", "9" * 5000])
def test_max_age_that_is_not_ascii_digits_is_ignored(client, mael, dsm_client, max_age):
    """str.isdigit() accepts '²' (int() refuses it); int() refuses more than 4300 digits."""
    signed_in(client, mael)
    response = client.get(authorize_query("ds923-dsm", max_age=max_age))
    assert response.status_code == 302
    assert "code=" in response["Location"]


def test_max_age_with_many_digits_is_still_honoured_when_it_fits(client, mael, dsm_client):
    signed_in(client, mael, auth_time=1)
    response = client.get(authorize_query("ds923-dsm", max_age="0300"))
    assert urlsplit(response["Location"]).path == "/login/"
    assert "max_age=300" in response["Location"]


def test_odd_max_age_is_not_passed_on_to_the_upstream(client, google_like):
    response = client.get("/login/google/?max_age=%C2%B2")
    assert response.status_code == 302
    assert "max_age" not in response["Location"]


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "nope"},
        {"client_id": "no\x00pe"},
        {"client_id": "nope", "post_logout_redirect_uri": "https://evil.example/"},
        {"id_token_hint": "abc"},
        {"id_token_hint": "a.b.c"},
        {"id_token_hint": "\x00"},
        {"id_token_hint": "abc", "post_logout_redirect_uri": "https://evil.example/"},
    ],
)
def test_logout_with_an_unknown_client_or_a_malformed_hint_is_a_400(client, mael, dsm_client, params):
    signed_in(client, mael)
    response = client.get("/logout/", params)
    assert response.status_code == 400
    assert "Location" not in response


def test_consent_form_posted_for_an_unknown_client_is_a_400(client, mael, dsm_client):
    signed_in(client, mael)
    form = {"client_id": "nope", "redirect_uri": "https://evil.example/", "response_type": "code",
            "scope": "openid", "state": "s", "allow": "Authorize"}
    response = client.post("/authorize/", form)
    assert response.status_code == 400
    assert "Location" not in response



NUL = "no\x00pe"
SECRET = "dsm-secret-Q7x9LmP2vR4tK8wZ3nB6yH1cJ5dF0gS"


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("get", "/authorize/", {"response_type": "code", "client_id": NUL, "redirect_uri": "http://127.0.0.1:9/callback",
                                "scope": "openid"}),
        ("get", "/authorize/", {"response_type": "code", "client_id": NUL, "prompt": "none", "scope": "openid",
                                "redirect_uri": "http://127.0.0.1:9/callback"}),
        ("post", "/token/", {"grant_type": "authorization_code", "code": "x", "client_id": NUL, "client_secret": "x"}),
        ("post", "/token/", {"grant_type": "authorization_code", "code": NUL, "client_id": "ds923-dsm",
                             "client_secret": SECRET, "redirect_uri": "http://127.0.0.1:9/callback"}),
        ("post", "/token/", {"grant_type": "refresh_token", "refresh_token": NUL, "client_id": "ds923-dsm",
                             "client_secret": SECRET}),
        ("post", "/revoke/", {"token": NUL, "client_id": "ds923-dsm", "client_secret": SECRET}),
        ("get", "/logout/", {"client_id": NUL}),
        ("get", "/login/", {"next": NUL}),
    ],
)
def test_nul_bytes_in_parameters_are_a_400_not_a_500(client, mael, dsm_client, method, path, params):
    """PostgreSQL (psycopg 3) refuses NUL bytes with a DataError: a client_id, code or token holding
    one was a 500 there (SQLite merely found no row)."""
    signed_in(client, mael)
    response = getattr(client, method)(path, params)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_nul_byte_in_a_basic_auth_client_id_is_an_invalid_client(client, dsm_client):
    import base64

    basic = base64.b64encode(b"no\x00pe:secret").decode()
    response = client.post("/token/", {"grant_type": "authorization_code", "code": "x"},
                           HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 401
