"""`hub keys rotate`: new tokens use the new key, old ones keep verifying for the grace period."""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from jwcrypto import jwk, jwt

from identityhub.oidc import keys
from identityhub.oidc.models import SigningKey
from tests.conftest import DSM_SECRET, exchange, get_code, signed_in

pytestmark = pytest.mark.django_db


def jwks(client) -> jwk.JWKSet:
    return jwk.JWKSet.from_json(client.get("/.well-known/jwks.json").content)


def header_kid(token: str) -> str:
    return json.loads(jwt.JWT(jwt=token, key=keys.keyring().published, algs=["RS256"]).header)["kid"]




def test_rotation_signs_with_the_new_key_and_keeps_the_old_one_published(client, mael, dsm_client, fresh_keyring):
    signed_in(client, mael)
    old_token = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), DSM_SECRET).json()["id_token"]
    old_kid = header_kid(old_token)

    new = keys.rotate()
    new_token = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), DSM_SECRET).json()["id_token"]
    assert header_kid(new_token) == new.kid != old_kid
    published = jwks(client)
    assert {key.get("kid") for key in published} == {old_kid, new.kid}
    for token in (old_token, new_token):  # an RP with the JWKS verifies both
        jwt.JWT(jwt=token, key=published, algs=["RS256"], check_claims={"exp": None})
    # RP-initiated logout still accepts a hint signed by the retiring key
    from oauth2_provider.models import Application

    Application.objects.filter(client_id="ds923-dsm").update(post_logout_redirect_uris="http://127.0.0.1:9/bye")
    response = client.get("/logout/", {"id_token_hint": old_token, "post_logout_redirect_uri": "http://127.0.0.1:9/bye"})
    assert response.status_code == 302 and response["Location"].startswith("http://127.0.0.1:9/bye")


def test_other_processes_pick_up_a_rotation_within_a_second(fresh_keyring):
    before = keys.keyring().kid
    SigningKey.objects.filter(active=True).update(active=False, retired_at=timezone.now())
    rotated = SigningKey.objects.create(kid="not-yet-seen", private_pem=keys.generate_private_pem(), active=True)
    assert keys.keyring().kid == before  # no generation change: the cached ring stands
    keys.bump_generation(keys.KEYS)  # what rotate() does in the other process
    keys._checked_at = 0.0  # ...and a second has passed
    assert keys.keyring().active_pem == rotated.private_pem


def test_a_key_retired_past_the_grace_period_is_no_longer_published(client, settings, fresh_keyring):
    first = keys.ensure_active_key()
    keys.rotate()
    assert first.kid in {key.get("kid") for key in jwks(client)}
    SigningKey.objects.filter(pk=first.pk).update(
        retired_at=timezone.now() - timedelta(seconds=settings.HUB_KEY_RETIREMENT_SECONDS + 1))
    keys.reload_keyring()
    assert first.kid not in {key.get("kid") for key in jwks(client)}


def test_keys_commands_print_ids_never_private_keys(fresh_keyring):
    first = keys.ensure_active_key()
    out = io.StringIO()
    call_command("hub", "keys", "rotate", stdout=out)
    call_command("hub", "keys", "list", stdout=out)
    text = out.getvalue()
    new = SigningKey.objects.get(active=True)
    assert f"{new.kid}: active" in text and f"{first.kid}: retiring" in text
    assert "PRIVATE KEY" not in text and "BEGIN" not in text
