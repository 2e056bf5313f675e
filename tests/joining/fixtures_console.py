"""Fixtures of the console and CLI tests of invitations and access requests (imported by
test_console_*.py and test_cli.py; the console fixtures `neighbour`, `mael_console`, … come from
tests/console/conftest.py, re-exported here).

valais (admin mael) has NAS ds923 — accounts mael.valais, maman and the free `photos` — and the
NAS-bound app ds923-dsm; `neighbours` (admin outsider@example.org) has ds220 and its own request.
"""

from __future__ import annotations

import pytest

from tests.console.conftest import mael_console, neighbour, neighbour_console, neighbour_nas, operator  # noqa: F401
from tests.fakes.dsm import FakeDSM

SERVICE_USER = "hub-sync"
SERVICE_PASSWORD = "s3cret-Pa55word!"
GRANNY = {"email": "granny@example.net", "name": "Granny Smith"}


def ask(household_id: str, client_id: str = "", nas_id: str = "", **identity):
    """An access request as the refusal page makes it (a stranger signed in with `google`)."""
    from joining import services

    values = {**GRANNY, "upstream_id": "google", "subject": "g-granny", **identity}
    request, created = services.request_access(services.AskContext(
        household_id=household_id, client_id=client_id, nas_id=nas_id, **values))
    assert created
    return request


@pytest.fixture
def free_account(nas):
    """A present, unlinked account on ds923 (linkable)."""
    from django.utils import timezone

    from synology.models import DSMAccount

    now = timezone.now()
    return DSMAccount.objects.create(nas=nas, name="photos", email="", first_seen=now, last_seen=now)


@pytest.fixture
def nas_request(dsm_client, nas, free_account):
    """Granny asks for DSM on ds923 (a NAS-bound app of valais)."""
    return ask("valais", dsm_client.client_id, nas.pk)


@pytest.fixture
def app_request(public_client):
    """Granny asks for Immich (valais, no NAS)."""
    return ask("valais", public_client.client_id)


@pytest.fixture
def neighbour_request(neighbour, neighbour_nas):  # noqa: F811  (fixtures imported above)
    return ask("neighbours", "", "", email="cousin@example.org", name="Cousin", subject="g-cousin")


@pytest.fixture
def valais_invitation(household, mael):
    from joining import services

    invitation, url = services.invite(household, "granny@example.net", name="Granny Smith", by=mael)
    return invitation


@pytest.fixture
def fake_dsm():
    """A real DSM fake over HTTP listing ds923's accounts (CSRF on); no session left open at the end."""
    fake = FakeDSM("dsm7", csrf=True)
    fake.accounts = {SERVICE_USER: fake.accounts[SERVICE_USER]}
    fake.add_user("mael.valais", email="mael@example.com")
    fake.add_user("maman")
    fake.add_user("photos")
    fake.start()
    yield fake
    fake.stop()
    assert fake.open_sessions == [], f"DSM sessions left open: {fake.open_sessions}"


@pytest.fixture
def live_nas(nas, free_account, fake_dsm):
    """ds923 pointed at the fake, with its service account."""
    nas.base_url = fake_dsm.url
    nas.service_username = SERVICE_USER
    nas.service_password = SERVICE_PASSWORD
    nas.save()
    return nas
