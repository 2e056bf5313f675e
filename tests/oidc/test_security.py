"""The provider's security behaviours: redirect URIs, codes, PKCE, secrets, refresh, withdrawal."""

import pytest
from oauth2_provider.models import AccessToken, Application, RefreshToken

from accounts.models import Membership
from identityhub.models import AuditEvent
from identityhub.oidc.hashers import check_secret_strength
from identityhub.oidc.services import ClientError, register_client
from tests.conftest import (
    DSM_SECRET,
    RP_REDIRECT,
    authorize_query,
    exchange,
    get_code,
    pkce_pair,
    redirect_params,
    signed_in,
)

pytestmark = pytest.mark.django_db


def test_unregistered_redirect_uri_shows_an_error_and_redirects_nowhere(client, mael, dsm_client):
    signed_in(client, mael)
    for uri in ("https://evil.example/cb", RP_REDIRECT + "/extra", RP_REDIRECT.upper(), RP_REDIRECT + "?x=1"):
        response = client.get(authorize_query("ds923-dsm", redirect_uri=uri))
        assert response.status_code == 400, uri
        assert "Location" not in response
        assert b"not valid" in response.content


def test_unknown_client_shows_an_error_and_redirects_nowhere(client, mael):
    signed_in(client, mael)
    response = client.get(authorize_query("nope", redirect_uri="https://evil.example/cb"))
    assert response.status_code == 400
    assert "Location" not in response


def test_code_reuse_fails_and_revokes_what_the_code_issued(client, mael, dsm_client):
    signed_in(client, mael)
    code = get_code(client, "ds923-dsm", scope="openid offline_access")
    first = exchange(client, "ds923-dsm", code, DSM_SECRET)
    assert first.status_code == 200, first.content
    tokens = first.json()
    assert client.get("/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 200

    replay = exchange(client, "ds923-dsm", code, DSM_SECRET)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert client.get("/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 401
    refresh = client.post("/token/", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                                      "client_id": "ds923-dsm", "client_secret": DSM_SECRET})
    assert refresh.status_code == 400
    assert AuditEvent.objects.filter(kind="token_revoked", reason="code_reuse").exists()


def test_code_is_bound_to_its_client(client, mael, dsm_client, household):
    register_client("other", redirect_uris=[RP_REDIRECT], client_secret=DSM_SECRET[::-1], households=[household],
                    skip_consent=True)
    signed_in(client, mael)
    code = get_code(client, "ds923-dsm")
    stolen = exchange(client, "other", code, DSM_SECRET[::-1])
    assert stolen.status_code == 400
    assert exchange(client, "ds923-dsm", code, DSM_SECRET).status_code == 200


def test_public_client_requires_pkce(client, mael, public_client):
    signed_in(client, mael)
    response = client.get(authorize_query("immich"))
    assert redirect_params(response)["error"] == "invalid_request"


def test_plain_pkce_is_refused(client, mael, public_client):
    signed_in(client, mael)
    response = client.get(authorize_query("immich", code_challenge="a" * 43, code_challenge_method="plain"))
    assert redirect_params(response)["error"] == "invalid_request"


def test_pkce_mismatch_is_rejected(client, mael, public_client):
    signed_in(client, mael)
    verifier, challenge = pkce_pair()
    code = get_code(client, "immich", code_challenge=challenge, code_challenge_method="S256")
    wrong = exchange(client, "immich", code, code_verifier=pkce_pair()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    missing = exchange(client, "immich", get_code(client, "immich", code_challenge=challenge, code_challenge_method="S256"))
    assert missing.status_code == 400
    right = exchange(client, "immich", get_code(client, "immich", code_challenge=challenge, code_challenge_method="S256"),
                     code_verifier=verifier)
    assert right.status_code == 200, right.content


def test_pkce_downgrade_is_rejected(client, mael, dsm_client):
    """A code issued without a challenge cannot be redeemed with a verifier (stripped challenge)."""
    signed_in(client, mael)
    verifier, _ = pkce_pair()
    code = get_code(client, "ds923-dsm")
    response = exchange(client, "ds923-dsm", code, DSM_SECRET, code_verifier=verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_confidential_client_may_skip_pkce_and_use_basic_or_post(client, mael, dsm_client):
    import base64

    signed_in(client, mael)
    assert exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), DSM_SECRET).status_code == 200
    code = get_code(client, "ds923-dsm")
    basic = base64.b64encode(f"ds923-dsm:{DSM_SECRET}".encode()).decode()
    response = client.post("/token/", {"grant_type": "authorization_code", "code": code, "redirect_uri": RP_REDIRECT},
                           HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 200, response.content


def test_wrong_client_secret_is_refused(client, mael, dsm_client):
    signed_in(client, mael)
    response = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), DSM_SECRET[:-1] + "x")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_client_secret_is_stored_with_the_fast_hasher_and_is_not_a_valid_secret_itself(client, mael, dsm_client):
    stored = Application.objects.get(client_id="ds923-dsm").client_secret
    assert stored.startswith("hub_client_sha256$")
    assert DSM_SECRET not in stored
    signed_in(client, mael)
    response = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), stored)
    assert response.status_code == 401


@pytest.mark.parametrize("secret", ["short", "a" * 40, "passwordpasswordpasswordpassword1", "0123456789" * 4,
                                    "hub_client_sha256$saltsaltsalt$" + "ab12" * 16])
def test_weak_client_secrets_are_refused(secret, nas):
    assert check_secret_strength(secret) is not None
    with pytest.raises(ClientError):
        register_client("weak", redirect_uris=[RP_REDIRECT], client_secret=secret, nas=nas)


def test_generated_secrets_are_strong(nas):
    _, generated = register_client("gen", redirect_uris=[RP_REDIRECT], nas=nas)
    assert generated and check_secret_strength(generated) is None


@pytest.mark.parametrize("uri", ["http://nas.example.com/cb", "ftp://x/cb", "/relative", "https://*.example.com/cb",
                                 "https://nas.example.com/cb#frag", "https://[::1/cb"])
def test_bad_redirect_uris_are_refused(uri, nas):
    with pytest.raises(ClientError):
        register_client("bad", redirect_uris=[uri], nas=nas)


def test_refresh_rotates_and_replay_revokes_the_family(client, mael, dsm_client):
    signed_in(client, mael)
    tokens = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm", scope="openid offline_access"), DSM_SECRET).json()
    form = {"grant_type": "refresh_token", "client_id": "ds923-dsm", "client_secret": DSM_SECRET}
    rotated = client.post("/token/", {**form, "refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200, rotated.content
    new = rotated.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert "id_token" in new
    replay = client.post("/token/", {**form, "refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 400
    assert client.post("/token/", {**form, "refresh_token": new["refresh_token"]}).status_code == 400


def test_leaving_the_household_stops_refresh_and_userinfo(client, mael, dsm_client, household):
    signed_in(client, mael)
    tokens = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm", scope="openid offline_access"), DSM_SECRET).json()
    Membership.objects.filter(user=mael, household=household).delete()
    assert client.get("/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 401
    refresh = client.post("/token/", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                                      "client_id": "ds923-dsm", "client_secret": DSM_SECRET})
    assert refresh.status_code == 400
    assert AuditEvent.objects.filter(kind="refusal", reason="not_in_household", user=mael).exists()


def test_losing_the_nas_account_stops_userinfo(client, mael, dsm_client):
    signed_in(client, mael)
    tokens = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), DSM_SECRET).json()
    mael.dsm_accounts.update(present=False)
    assert client.get("/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 401


def test_a_refused_exchange_issues_nothing(client, mael, dsm_client, household):
    signed_in(client, mael)
    code = get_code(client, "ds923-dsm")
    Membership.objects.filter(user=mael).delete()
    assert exchange(client, "ds923-dsm", code, DSM_SECRET).status_code == 400
    assert not AccessToken.objects.exists() and not RefreshToken.objects.exists()


def test_concurrent_redemption_of_one_code_is_a_replay_not_a_500(client, mael, dsm_client):
    """On PostgreSQL two exchanges of one code can both read the grant; the loser's RedeemedCode
    insert then hits the unique digest. It must get invalid_grant, and the winner's tokens go."""
    from identityhub.oidc.models import RedeemedCode
    from identityhub.oidc.validator import _digest

    signed_in(client, mael)
    code = get_code(client, "ds923-dsm")
    winner = AccessToken.objects.create(user=mael, application=dsm_client, token="winner-token",
                                        expires="2999-01-01T00:00:00Z", scope="openid")
    RedeemedCode.objects.create(code_digest=_digest(code), application=dsm_client,
                                access_token_checksum=winner.token_checksum)
    loser = exchange(client, "ds923-dsm", code, DSM_SECRET)
    assert loser.status_code == 400 and loser.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()
    assert AuditEvent.objects.filter(kind="token_revoked", reason="code_reuse").exists()


def test_a_confidential_client_never_authenticates_with_an_empty_secret(client, mael, household):
    """A public client's stored secret is the hash of "": turned confidential (services or the admin's
    client type radio), it must not then accept a missing or empty secret."""
    register_client("app", redirect_uris=[RP_REDIRECT], public=True, households=[household], skip_consent=True)
    app = Application.objects.get(client_id="app")
    app.client_type = Application.CLIENT_CONFIDENTIAL  # as the admin would, leaving the secret field alone
    app.save()
    signed_in(client, mael)
    assert exchange(client, "app", get_code(client, "app")).status_code == 401
    assert exchange(client, "app", get_code(client, "app"), secret="").status_code == 401


def test_turning_a_public_client_confidential_generates_a_secret(client, mael, household):
    register_client("app", redirect_uris=[RP_REDIRECT], public=True, households=[household], skip_consent=True)
    _, generated = register_client("app", redirect_uris=[RP_REDIRECT], households=[household], skip_consent=True)
    assert generated and check_secret_strength(generated) is None
    signed_in(client, mael)
    assert exchange(client, "app", get_code(client, "app")).status_code == 401
    assert exchange(client, "app", get_code(client, "app"), generated).status_code == 200
    # an existing confidential client keeps its secret
    _, again = register_client("app", redirect_uris=[RP_REDIRECT], households=[household], skip_consent=True)
    assert again is None
    assert exchange(client, "app", get_code(client, "app"), generated).status_code == 200


def test_policy_sql_and_selector_agree_on_the_preferred_account(mael, dsm_client, nas):
    """The raw policy query and its ORM twin (synology.selectors) pick the same account."""
    from django.utils import timezone

    from identityhub.oidc.policy import check_access
    from synology.models import DSMAccount
    from synology.selectors import dsm_username_for

    now = timezone.now()
    for name, how in (("a-admin", "admin"), ("b-explicit", "explicit"), ("0-email", "email")):
        DSMAccount.objects.create(nas=nas, name=name, user=mael, linked_by=how, first_seen=now, last_seen=now)
    assert check_access(mael, dsm_client).dsm_username == dsm_username_for(nas, mael) == "b-explicit"
    DSMAccount.objects.filter(linked_by="explicit").update(expired=True)
    assert check_access(mael, dsm_client).dsm_username == dsm_username_for(nas, mael) == "a-admin"
