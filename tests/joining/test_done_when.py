"""Issue 8's "done when", end to end against the real DSM and upstream fakes (in-process hub):
a person the hub has never seen asks for access from the DSM app's refusal page, the household
admin approves with "create DSM account", and the person's next sign-in reaches that new account."""

from __future__ import annotations

import json
import secrets
from base64 import urlsafe_b64decode

import pytest

from accounts.models import User
from joining import services
from joining.models import AccessRequest
from synology.models import DSMAccount
from synology.provisioning import suggest_account_name
from tests.conftest import DSM_SECRET, authorize_query, exchange, redirect_params, upstream_round_trip
from tests.fakes.oidc_upstream import Identity

pytestmark = pytest.mark.django_db

GRANNY = Identity(sub="g-granny", email="granny@example.net", name="Granny Smith")


def id_token_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_a_stranger_asks_the_admin_creates_their_dsm_account_and_they_sign_in_to_it(
        client, upstream_provider, google_like, dsm_on_fake, fake_nas, mael):
    nonce = secrets.token_urlsafe(8)
    upstream_provider.identity = GRANNY
    refused = upstream_round_trip(client, next_url=authorize_query("ds923-dsm", nonce=nonce))
    assert refused.status_code == 403 and b'id="ask-for-access"' in refused.content
    assert client.post("/ask-for-access/").status_code == 302
    request = AccessRequest.objects.get()
    assert (request.nas_id, request.household_id, request.client_id) == ("ds923", "valais", "ds923-dsm")
    assert not User.objects.filter(email="granny@example.net").exists()

    name = suggest_account_name(request.nas, request.email, request.name)
    assert name == "granny.smith"
    outcome = services.approve_request(request, by=mael, account=services.AccountChoice(request.nas, create=name))
    assert "granny.smith" in outcome
    assert "granny.smith" in {u["name"] for u in fake_nas.users}  # really created on the NAS
    granny = User.objects.get(email="granny@example.net")
    assert DSMAccount.objects.get(nas_id="ds923", name="granny.smith").user == granny

    client.logout()
    upstream_provider.identity = GRANNY
    back = upstream_round_trip(client, next_url=authorize_query("ds923-dsm", nonce=nonce))
    assert back.status_code == 302
    code = redirect_params(client.get(back["Location"]))["code"]
    tokens = exchange(client, "ds923-dsm", code, DSM_SECRET)
    assert tokens.status_code == 200, tokens.content
    claims = id_token_claims(tokens.json()["id_token"])
    assert (claims["username"], claims["nonce"]) == ("granny.smith", nonce)


def test_a_sleeping_nas_leaves_the_request_open_and_a_retry_succeeds(
        client, upstream_provider, google_like, dsm_on_fake, fake_nas, mael):
    upstream_provider.identity = GRANNY
    upstream_round_trip(client, next_url=authorize_query("ds923-dsm"))
    client.post("/ask-for-access/")
    request = AccessRequest.objects.get()
    choice = services.AccountChoice(request.nas, create="granny")
    fake_nas.fault("code", api="SYNO.Core.User", method="create", code=105, times=1)
    with pytest.raises(services.JoiningError) as failure:
        services.approve_request(request, by=mael, account=choice)
    assert "105" in str(failure.value)
    request.refresh_from_db()
    assert request.state == "open" and "105" in request.outcome
    assert not User.objects.filter(email="granny@example.net").exists()
    assert not DSMAccount.objects.filter(name="granny").exists()

    services.approve_request(request, by=mael, account=choice)
    assert DSMAccount.objects.get(name="granny").user.email == "granny@example.net"


def test_a_name_already_taken_on_the_nas_is_refused_clearly(client, upstream_provider, google_like, dsm_on_fake, mael):
    upstream_provider.identity = GRANNY
    upstream_round_trip(client, next_url=authorize_query("ds923-dsm"))
    client.post("/ask-for-access/")
    request = AccessRequest.objects.get()
    with pytest.raises(services.JoiningError) as failure:
        services.approve_request(request, by=mael, account=services.AccountChoice(request.nas, create="Mael.Valais"))
    assert "mael.valais" in str(failure.value).lower()
    assert AccessRequest.objects.get().state == "open"


def test_approving_a_nas_bound_request_needs_an_account_choice(client, upstream_provider, google_like, dsm_on_fake, mael):
    upstream_provider.identity = GRANNY
    upstream_round_trip(client, next_url=authorize_query("ds923-dsm"))
    client.post("/ask-for-access/")
    with pytest.raises(services.JoiningError):
        services.approve_request(AccessRequest.objects.get(), by=mael)
    assert not User.objects.filter(email="granny@example.net").exists()


def test_a_member_without_a_nas_account_asks_and_gets_one(client, dsm_on_fake, fake_nas, people, mael):
    from tests.conftest import signed_in

    no_nas = people["no_nas"]
    signed_in(client, no_nas)
    refused = client.get(authorize_query("ds923-dsm"))
    assert refused.status_code == 403 and b"has no account on DS923+" in refused.content
    assert b'id="ask-for-access"' in refused.content
    client.post("/ask-for-access/")
    request = AccessRequest.objects.get()
    assert (request.user, request.nas_id, request.upstream_id) == (no_nas, "ds923", "")
    services.approve_request(request, by=mael, account=services.AccountChoice(request.nas, create="nonas"))
    code = redirect_params(client.get(authorize_query("ds923-dsm")))["code"]
    claims = id_token_claims(exchange(client, "ds923-dsm", code, DSM_SECRET).json()["id_token"])
    assert claims["username"] == "nonas"


def test_an_account_on_another_nas_than_the_apps_is_refused(client, upstream_provider, google_like, dsm_on_fake,
                                                             other_household, mael):
    from synology.services import declare_nas

    elsewhere = declare_nas("elsewhere", household=other_household, base_url="https://192.0.2.99:5001")
    upstream_provider.identity = GRANNY
    upstream_round_trip(client, next_url=authorize_query("ds923-dsm"))
    client.post("/ask-for-access/")
    with pytest.raises(services.JoiningError, match="does not belong"):
        services.approve_request(AccessRequest.objects.get(), by=mael,
                                 account=services.AccountChoice(elsewhere, create="granny"))
    assert AccessRequest.objects.get().state == "open" and not User.objects.filter(email=GRANNY.email).exists()
