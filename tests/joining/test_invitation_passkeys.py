"""Joining from an invitation with a passkey: no upstream account needed (grandparents)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Membership, Passkey
from joining import services
from joining.models import Invitation
from tests.passkeys.authenticator import SoftAuthenticator
from tests.passkeys.conftest import ISSUER, post_json, sign_in_with_passkey

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def passkey_issuer(settings):
    settings.HUB_ISSUER = ISSUER  # browsers take a host name as relying party ID, never an IP address


@pytest.fixture
def invitation(household, people, mael):
    invitation, url = services.invite(household, "grandma@example.com", name="Grandma", by=mael)
    return invitation, url.rstrip("/").rsplit("/", 1)[-1]


def create_passkey(client: Client, token: str, authenticator: SoftAuthenticator, name: str = "Tablet"):
    options = post_json(client, f"/invite/{token}/passkey/options/")
    assert options.status_code == 200, options.content
    return post_json(client, f"/invite/{token}/passkey/", {"credential": authenticator.create(options.json()),
                                                           "name": name})


def test_a_passkey_redeems_the_invitation_and_signs_in(client, invitation):
    invitation, token = invitation
    page = client.get(f"/invite/{token}/")
    assert b'id="invite-create-passkey"' in page.content
    authenticator = SoftAuthenticator(origin=ISSUER)
    answer = create_passkey(client, token, authenticator)
    assert answer.status_code == 200 and answer.json() == {"redirect": "/welcome/"}
    grandma = invitation.person
    assert client.session["_auth_user_id"] == str(grandma.pk) and client.session["hub_upstream"] == "passkey"
    assert Passkey.objects.get(user=grandma).name == "Tablet"
    assert Membership.objects.get(user=grandma).joined_by == "invitation"
    invitation.refresh_from_db()
    assert (invitation.state, invitation.used_with) == ("used", "passkey")

    other = Client()  # later, on the same device: the passkey signs her in
    assert sign_in_with_passkey(other, authenticator).json()["redirect"] == "/account/"
    assert other.session["_auth_user_id"] == str(grandma.pk)


def test_a_used_invitation_registers_no_passkey(client, invitation):
    invitation, token = invitation
    create_passkey(client, token, SoftAuthenticator(origin=ISSUER))
    late = Client()
    options = post_json(late, f"/invite/{token}/passkey/options/")
    assert options.status_code == 410
    assert Passkey.objects.count() == 1


def test_an_invitation_expiring_during_the_ceremony_keeps_nothing(client, invitation):
    invitation, token = invitation
    authenticator = SoftAuthenticator(origin=ISSUER)
    options = post_json(client, f"/invite/{token}/passkey/options/")
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    answer = post_json(client, f"/invite/{token}/passkey/", {"credential": authenticator.create(options.json())})
    assert answer.status_code == 410
    assert not Passkey.objects.exists() and not Membership.objects.filter(user=invitation.person).exists()
    assert "_auth_user_id" not in client.session


def test_a_forged_credential_is_refused_and_the_invitation_stays_waiting(client, invitation):
    invitation, token = invitation
    options = post_json(client, f"/invite/{token}/passkey/options/")
    wrong_origin = SoftAuthenticator(origin="http://evil.example:8000")
    answer = post_json(client, f"/invite/{token}/passkey/", {"credential": wrong_origin.create(options.json())})
    assert answer.status_code == 400 and "error" in answer.json()
    invitation.refresh_from_db()
    assert invitation.state == "pending" and not Passkey.objects.exists()


def test_garbage_bodies_are_a_clear_400(client, invitation):
    _invitation, token = invitation
    post_json(client, f"/invite/{token}/passkey/options/")
    for body in (b"not json", b"[1, 2]", b"{" * 70000):
        answer = client.post(f"/invite/{token}/passkey/", data=body, content_type="application/json")
        assert answer.status_code == 400, body[:10]
