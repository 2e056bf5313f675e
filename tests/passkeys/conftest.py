"""Passkey fixtures: an issuer on a host name (browsers refuse an IP address as relying party ID),
a software authenticator per person, and helpers that run the ceremonies through the hub's URLs."""

from __future__ import annotations

import json

import pytest

from tests.passkeys.authenticator import SoftAuthenticator

ISSUER = "http://localhost:8000"


@pytest.fixture(autouse=True)
def passkey_issuer(settings):
    settings.HUB_ISSUER = ISSUER
    return ISSUER


@pytest.fixture
def authenticator():
    return SoftAuthenticator(origin=ISSUER)


class Session(dict):
    """A plain dict stands in for request.session in the service-level tests (the services only use
    get / setitem, as on Django's session)."""


def post_json(client, url: str, body: dict | None = None):
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")


def add_passkey_through_account(client, authenticator: SoftAuthenticator, name: str = ""):
    """What passkeys.js does on the account page, with the software authenticator as the device."""
    options = post_json(client, "/account/passkeys/options/")
    assert options.status_code == 200, options.content
    credential = authenticator.create(options.json())
    return post_json(client, "/account/passkeys/verify/", {"credential": credential, "name": name})


def sign_in_with_passkey(client, authenticator: SoftAuthenticator, next_url: str = "", **assertion):
    """What passkeys.js does on the sign-in page."""
    options = post_json(client, "/login/passkey/options/")
    assert options.status_code == 200, options.content
    credential = authenticator.get(options.json(), **assertion)
    return post_json(client, "/login/passkey/verify/", {"credential": credential, "next": next_url})


@pytest.fixture
def registered(db, mael, authenticator):
    """Maël with one passkey on the software authenticator (made through the services)."""
    from accounts import passkeys

    session = Session()
    options = passkeys.registration_options(session, mael)
    passkey = passkeys.register_passkey(session, mael, authenticator.create(options), name="Maël's phone")
    return passkey
