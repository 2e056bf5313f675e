"""Invitations: a single-use link, redeemed with any upstream (whatever its email) or a passkey."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from social_django.models import UserSocialAuth

from accounts.models import Household, Membership, User
from joining import services
from joining.models import Invitation
from synology.models import DSMAccount
from tests.conftest import signed_in, upstream_round_trip
from tests.fakes.oidc_upstream import Identity

pytestmark = pytest.mark.django_db


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


@pytest.fixture
def invitation(household, people, mael):
    invitation, url = services.invite(household, "grandpa@example.com", name="Grandpa", by=mael)
    return invitation, token_of(url)


def redeem_with_upstream(client: Client, token: str, upstream_provider, identity: Identity, upstream: str = "google"):
    from urllib.parse import urlsplit

    import requests

    start = client.post(f"/invite/{token}/sign-in/{upstream}/")
    assert start.status_code == 302, start.content[:500]
    login = client.get(start["Location"])
    assert login.status_code == 302, login.content[:500]
    upstream_provider.identity = identity
    at_upstream = requests.get(login["Location"], allow_redirects=False, timeout=10)
    back = urlsplit(at_upstream.headers["Location"])
    return client.get(f"{back.path}?{back.query}")


def test_an_invitation_declares_the_person_and_keeps_only_a_digest(household, people, mael):
    invitation, url = services.invite(household, "Grandpa@Example.com", name="Grandpa", by=mael)
    token = token_of(url)
    assert url == f"http://127.0.0.1:8000/invite/{token}/"
    assert len(token) >= 40 and token not in invitation.token_digest
    assert invitation.person == User.objects.get(email="grandpa@example.com")
    assert not Membership.objects.filter(user=invitation.person).exists()  # joins when redeemed
    assert invitation.expires_at - timezone.now() > timedelta(days=6, hours=23)
    assert invitation.state == "pending"


def test_the_invitation_page_offers_every_upstream_and_a_passkey(client, google_like, invitation, settings):
    settings.HUB_ISSUER = "http://localhost:8000"  # passkeys need a host name, never an IP address
    _invitation, token = invitation
    page = client.get(f"/invite/{token}/")
    assert page.status_code == 200
    assert b"Join Valais family" in page.content and b"grandpa@example.com" in page.content
    assert b'id="invite-upstream-google"' in page.content and b'id="invite-create-passkey"' in page.content
    assert b"Ma\xc3\xabl Valais invited" in page.content
    settings.HUB_ISSUER = "http://127.0.0.1:8000"
    assert b"invite-create-passkey" not in client.get(f"/invite/{token}/").content


def test_redeeming_with_an_upstream_links_that_account_whatever_its_email(client, upstream_provider, google_like,
                                                                          invitation):
    invitation, token = invitation
    arrived = redeem_with_upstream(client, token, upstream_provider,
                                   Identity(sub="g-grandpa", email="old.man.1948@gmail.com"))
    assert arrived.status_code == 302 and arrived["Location"] == "/welcome/"
    grandpa = invitation.person
    assert client.session["_auth_user_id"] == str(grandpa.pk)
    link = UserSocialAuth.objects.get(user=grandpa)
    assert (link.provider, link.uid, link.extra_data["iss"]) == ("google", "g-grandpa", upstream_provider.issuer)
    membership = Membership.objects.get(user=grandpa)
    assert (membership.household_id, membership.role, membership.joined_by) == ("valais", "member", "invitation")
    invitation.refresh_from_db()
    assert invitation.state == "used" and invitation.used_with == "google"
    assert client.get("/welcome/").status_code == 200
    # The link works once: the next visitor is told so.
    used = Client().get(f"/invite/{token}/")
    assert used.status_code == 410 and b"already used" in used.content


def test_two_browsers_racing_for_one_invitation_only_one_joins(upstream_provider, google_like, invitation):
    invitation, token = invitation
    first, second = Client(), Client()
    first.post(f"/invite/{token}/sign-in/google/")
    second.post(f"/invite/{token}/sign-in/google/")  # both started while it was waiting
    assert redeem_with_upstream(first, token, upstream_provider, Identity(sub="g-1", email="a@gmail.com"))[
        "Location"] == "/welcome/"
    from urllib.parse import urlsplit

    import requests

    login = second.get("/login/google/?next=/welcome/")
    upstream_provider.identity = Identity(sub="g-2", email="b@gmail.com")
    back = urlsplit(requests.get(login["Location"], allow_redirects=False, timeout=10).headers["Location"])
    refused = second.get(f"{back.path}?{back.query}")
    assert refused.status_code == 403 and b"can no longer be used" in refused.content
    assert list(UserSocialAuth.objects.values_list("uid", flat=True)) == ["g-1"]
    assert "_auth_user_id" not in second.session


def test_an_account_already_linked_to_someone_else_cannot_redeem(client, upstream_provider, google_like, invitation,
                                                                 mael):
    invitation, token = invitation
    upstream_provider.identity = Identity(sub="g-mael", email="mael@example.com")
    upstream_round_trip(Client())  # Maël's own first sign-in links g-mael to him
    assert UserSocialAuth.objects.get(uid="g-mael").user == mael
    refused = redeem_with_upstream(client, token, upstream_provider, Identity(sub="g-mael", email="mael@example.com"))
    assert refused.status_code == 403 and b"already belongs to mael@example.com" in refused.content
    invitation.refresh_from_db()
    assert invitation.state == "pending" and not Membership.objects.filter(user=invitation.person).exists()


@pytest.mark.parametrize("state", ["expired", "revoked"])
def test_expired_and_revoked_invitations_say_so(client, google_like, invitation, state, mael):
    invitation, token = invitation
    if state == "expired":
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    else:
        assert services.revoke_invitation(invitation, by=mael)
        assert not services.revoke_invitation(invitation, by=mael)
    page = client.get(f"/invite/{token}/")
    assert page.status_code == 410
    assert (b"expired on" if state == "expired" else b"withdrawn") in page.content
    assert b"mael@example.com" in page.content  # whom to ask for a new one
    assert client.post(f"/invite/{token}/sign-in/google/").status_code == 410
    assert client.post(f"/invite/{token}/passkey/options/").status_code == 410


def test_an_unknown_token_is_a_plain_404(client):
    page = client.get("/invite/not-a-real-token/")
    assert page.status_code == 404 and b"not valid" in page.content


def test_expiring_while_signing_in_upstream_refuses_and_links_nothing(client, upstream_provider, google_like,
                                                                      invitation):
    from urllib.parse import urlsplit

    import requests

    invitation, token = invitation
    client.post(f"/invite/{token}/sign-in/google/")
    login = client.get("/login/google/?next=/welcome/")
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    upstream_provider.identity = Identity(sub="g-late", email="late@gmail.com")
    back = urlsplit(requests.get(login["Location"], allow_redirects=False, timeout=10).headers["Location"])
    refused = client.get(f"{back.path}?{back.query}")
    assert refused.status_code == 403 and b"can no longer be used" in refused.content
    assert not UserSocialAuth.objects.exists()


def test_the_invited_person_already_signed_in_joins_with_one_button(client, invitation):
    invitation, token = invitation
    signed_in(client, invitation.person)
    page = client.get(f"/invite/{token}/")
    assert b'id="join"' in page.content and b"invite-create-passkey" not in page.content
    assert client.post(f"/invite/{token}/join/")["Location"] == "/welcome/"
    assert Membership.objects.filter(user=invitation.person, household_id="valais", joined_by="invitation").exists()


def test_someone_else_signed_in_is_told_to_sign_out_first(client, invitation, mum):
    invitation, token = invitation
    signed_in(client, mum)
    page = client.get(f"/invite/{token}/")
    assert b'id="signed-in-as-someone-else"' in page.content
    assert client.post(f"/invite/{token}/join/").status_code == 302
    invitation.refresh_from_db()
    assert invitation.state == "pending"


def test_an_invitation_can_link_an_existing_nas_account(household, nas, people, mael):
    now = timezone.now()
    DSMAccount.objects.create(nas=nas, name="Grandpa", email="", first_seen=now, last_seen=now)
    invitation, _url = services.invite(household, "grandpa@example.com",
                                       account=services.AccountChoice(nas, link="grandpa"), by=mael)
    assert invitation.account_name == "Grandpa"
    assert DSMAccount.objects.get(nas=nas, name="Grandpa").user == invitation.person


def test_invitation_errors_create_nothing(household, other_household, nas, people, mael):
    before = (User.objects.count(), Invitation.objects.count())
    cases = [
        dict(account=services.AccountChoice(nas, link="maman")),  # mum's account
        dict(account=services.AccountChoice(nas, link="nobody")),
        dict(role="owner"),
    ]
    for kwargs in cases:
        with pytest.raises(services.JoiningError):
            services.invite(household, "new@example.com", by=mael, **kwargs)
    with pytest.raises(services.JoiningError):  # a NAS of another household
        services.invite(other_household, "new@example.com", account=services.AccountChoice(nas, link="x"))
    with pytest.raises(services.JoiningError):
        services.invite(household, "not-an-address", by=mael)
    assert (User.objects.count(), Invitation.objects.count()) == before


@pytest.mark.parametrize(("text", "expected"), [("7d", timedelta(days=7)), ("36h", timedelta(hours=36)),
                                                ("90m", timedelta(minutes=90))])
def test_lifetimes(text, expected):
    assert services.parse_lifetime(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "-1d", "1m", "91d", "7w", "٣d"])
def test_bad_lifetimes(text):
    with pytest.raises(services.JoiningError):
        services.parse_lifetime(text)


def test_the_config_leaves_an_invited_membership_alone(client, invitation):
    from accounts.services import MemberSpec, set_members

    invitation, token = invitation
    signed_in(client, invitation.person)
    client.post(f"/invite/{token}/join/")
    set_members(Household.objects.get(pk="valais"), [MemberSpec("mael@example.com", "Maël", "admin")], managed=True)
    assert Membership.objects.filter(user=invitation.person, household_id="valais").exists()


# --- whom a household admin may invite: redeeming links any account to the invited person -----------
def test_a_household_admin_cannot_invite_someone_of_another_household(household, other_household, people, mael):
    outsider = people["outsider"]  # a member of the neighbours only
    with pytest.raises(services.JoiningError, match="household you do not run"):
        services.invite(household, outsider.email, by=mael)
    with pytest.raises(services.JoiningError, match="not an admin of"):
        services.invite(other_household, "someone.new@example.com", by=mael)
    assert not Invitation.objects.exists()


def test_the_neighbours_admin_cannot_take_over_a_valais_member_or_an_operator(household, other_household, people):
    neighbour_admin = people["outsider"]
    Membership.objects.filter(user=neighbour_admin).update(role="admin")
    mael = people["mael"]
    mael.is_superuser = True
    mael.save()
    for email in ("mum@example.com", "mael@example.com"):
        with pytest.raises(services.JoiningError):
            services.invite(other_household, email, by=neighbour_admin)
    # Operators and the hub command may invite anyone.
    assert services.invite(other_household, "mum@example.com", by=mael)[0].person.email == "mum@example.com"
    assert services.invite(other_household, "mael@example.com")[0].person == mael


def test_an_existing_persons_name_is_not_changed_by_an_invitation(household, people, mael):
    invitation, _url = services.invite(household, "mum@example.com", name="Someone Else", by=mael)
    invitation.person.refresh_from_db()
    assert invitation.person.name == "Mum"


def test_an_invitation_whose_person_joined_another_household_meanwhile_is_refused(client, household, other_household,
                                                                                    invitation):
    invitation, token = invitation
    Membership.objects.create(user=invitation.person, household=other_household)
    signed_in(client, invitation.person)
    client.post(f"/invite/{token}/join/")
    invitation.refresh_from_db()
    assert invitation.state == "pending"
    assert not Membership.objects.filter(user=invitation.person, household=household).exists()


def test_an_abandoned_invitation_sign_in_does_not_capture_a_later_one(client, upstream_provider, google_like,
                                                                      invitation, mum):
    invitation, token = invitation
    client.post(f"/invite/{token}/sign-in/google/")  # Grandpa starts, then walks away
    upstream_provider.identity = Identity(sub="g-mum", email="mum@example.com")
    arrived = upstream_round_trip(client, next_url="/account/")  # Mum signs in on the same computer
    assert arrived["Location"] == "/account/"
    assert UserSocialAuth.objects.get(uid="g-mum").user == mum
    invitation.refresh_from_db()
    assert invitation.state == "pending"
