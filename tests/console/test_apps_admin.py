"""The console's App page (DOT's Application + the hub's ClientProfile), its secret shown once,
Connect DSM, claims preview, and the operator-only signing keys and consents — scoped by household."""

from __future__ import annotations

import base64
import html
import json
import re

import pytest
from django.contrib.auth.hashers import check_password
from django.urls import reverse
from oauth2_provider.models import Application

from tests.conftest import DSM_SECRET, RP_REDIRECT, exchange, get_code, signed_in

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/oauth2_provider/application/add/"


def change_url(app) -> str:
    return f"/admin/oauth2_provider/application/{app.pk}/change/"


def claims_url(app) -> str:
    return f"/admin/oauth2_provider/application/{app.pk}/claims/"


def rotate_url(app) -> str:
    return f"/admin/oauth2_provider/application/{app.pk}/rotate-secret/"


@pytest.fixture
def mael_admin(client, mael):
    return signed_in(client, mael)


@pytest.fixture
def neighbour_admin(client, people, other_household):
    """`outsider` promoted to admin of "neighbours" (through a saved membership, as the admin would)."""
    from accounts.models import Membership

    membership = Membership.objects.get(user=people["outsider"], household=other_household)
    membership.role = Membership.Role.ADMIN
    membership.save()
    return signed_in(client, people["outsider"])


@pytest.fixture
def operator_admin(client, db):
    from accounts.models import User

    return signed_in(client, User.objects.create_superuser("op@example.com", name="Operator"))


def dsm_form(**overrides) -> dict:
    data = {"name": "DSM on DS224+", "client_id": "ds224-dsm", "client_type": "confidential",
            "redirect_uris": "https://ds224.example.com:5001\nhttps://ds224.example.com:5001/",
            "post_logout_redirect_uris": "", "nas": "ds923", "skip_authorization": "on", "_save": "Save"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def change_form(app, **overrides) -> dict:
    profile = app.profile
    data = {"name": app.name, "client_type": app.client_type, "redirect_uris": "\n".join(app.redirect_uris.split()),
            "post_logout_redirect_uris": "\n".join(app.post_logout_redirect_uris.split()),
            "nas": profile.nas_id or "", "households": [h.pk for h in profile.households.all()], "_save": "Save"}
    if app.skip_authorization:
        data["skip_authorization"] = "on"
    data.update(overrides)
    return data


def shown_secret(page: str) -> str:
    match = re.search(r'<code class="hub-secret" id="client-secret">([^<]+)</code>', page)
    assert match, page[:3000]
    return html.unescape(match.group(1))


def value_of(page: str, item: str) -> str:
    match = re.search(rf'<code id="dsm-value-{item}">([^<]*)</code>', page)
    assert match, f"no {item} in the Connect DSM block"
    return html.unescape(match.group(1))


# --- one page, only what the hub serves ----------------------------------------------------------
def test_the_app_page_offers_only_what_the_hub_serves(mael_admin, nas):
    page = mael_admin.get(ADD_URL).content.decode()
    for name in ("name", "client_id", "client_type", "redirect_uris", "post_logout_redirect_uris", "nas",
                 "households", "skip_authorization"):
        assert f'name="{name}"' in page, name
    for absent in ("authorization_grant_type", "algorithm", "client_secret", "hash_client_secret", "allowed_origins",
                   "Implicit", "Resource owner password", "HMAC"):
        assert absent not in page, absent


def test_the_change_page_has_no_view_on_site_no_secret_and_a_fixed_client_id(mael_admin, dsm_client):
    page = mael_admin.get(change_url(dsm_client)).content.decode()
    assert "viewsitelink" not in page and "View on site" not in page
    assert DSM_SECRET not in page
    assert "hub_client_sha256" not in page and dsm_client.client_secret not in page
    assert 'name="client_id"' not in page and "ds923-dsm" in page
    assert "DSM on DS923+" in page


def test_the_client_profile_admin_is_gone(operator_admin, dsm_client):
    from django.contrib import admin

    from identityhub.oidc.models import ClientProfile

    assert not admin.site.is_registered(ClientProfile)


# --- creation: the secret once ---------------------------------------------------------------------
def test_creating_a_dsm_app_shows_its_generated_secret_once(mael_admin, nas):
    from django.contrib.admin.models import LogEntry

    from identityhub.models import AuditEvent

    response = mael_admin.post(ADD_URL, dsm_form())
    assert response.status_code == 200, response.content[:3000]
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    secret = shown_secret(page)
    assert len(secret) >= 43 and page.count(secret) == 1
    assert "will not be shown again" in page
    assert 'data-copy="client-secret"' in page

    app = Application.objects.get(client_id="ds224-dsm")
    assert app.client_type == "confidential" and app.algorithm == "RS256"
    assert app.authorization_grant_type == "authorization-code" and app.skip_authorization
    assert app.redirect_uris == "https://ds224.example.com:5001 https://ds224.example.com:5001/"
    assert app.client_secret.startswith("hub_client_sha256$") and check_password(secret, app.client_secret)
    assert app.profile.nas_id == "ds923" and not app.profile.households.exists() and not app.profile.managed

    # never again: not on the change page, not in the session, messages, history or audit trail
    later = mael_admin.get(change_url(app)).content.decode()
    assert secret not in later
    assert secret not in str(dict(mael_admin.session.items()))
    assert not any(secret in str(e.change_message) + e.object_repr for e in LogEntry.objects.all())
    assert not any(secret in json.dumps(e.details) for e in AuditEvent.objects.all())


def test_the_generated_secret_authenticates(mael_admin, nas):
    secret = shown_secret(mael_admin.post(ADD_URL, dsm_form(redirect_uris=RP_REDIRECT)).content.decode())
    response = exchange(mael_admin, "ds224-dsm", get_code(mael_admin, "ds224-dsm"), secret)
    assert response.status_code == 200, response.content


def test_a_public_app_gets_no_secret(mael_admin, household):
    response = mael_admin.post(ADD_URL, dsm_form(client_id="immich2", name="Immich", client_type="public", nas="",
                                                 households=["valais"]))
    assert response.status_code == 302
    app = Application.objects.get(client_id="immich2")
    assert app.client_type == "public" and list(app.profile.households.values_list("pk", flat=True)) == ["valais"]
    page = mael_admin.get(change_url(app)).content.decode()
    assert "tool-rotate-secret" not in page and "connect-dsm" not in page


@pytest.mark.parametrize(("overrides", "error"), [
    ({"nas": "", "households": None}, "required without a NAS"),
    ({"redirect_uris": "http://192.0.2.20:5000"}, "must use https"),
    ({"redirect_uris": "https://nas.example.com/#x"}, "must not carry a fragment"),
    ({"redirect_uris": ""}, "This field is required"),
    ({"post_logout_redirect_uris": "https://*.example.com/"}, "wildcards"),
    ({"client_id": "has space"}, "without spaces"),
])
def test_creation_applies_the_config_rules(mael_admin, nas, overrides, error):
    response = mael_admin.post(ADD_URL, dsm_form(**overrides))
    assert response.status_code == 200
    assert error in html.unescape(response.content.decode())
    assert not Application.objects.filter(client_id=overrides.get("client_id", "ds224-dsm")).exists()


def test_an_existing_client_id_is_refused_not_taken_over(neighbour_admin, dsm_client, other_household):
    stored = Application.objects.get(pk=dsm_client.pk)
    response = neighbour_admin.post(ADD_URL, dsm_form(client_id="ds923-dsm", nas="", households=["neighbours"]))
    assert response.status_code == 200 and b"already exists" in response.content
    after = Application.objects.get(pk=dsm_client.pk)
    assert (after.client_secret, after.name, after.profile.nas_id) == (stored.client_secret, stored.name, "ds923")
    assert not after.profile.households.exists()


def test_changing_an_app_keeps_its_secret_and_extra_claims(mael_admin, dsm_client):
    from identityhub.oidc.models import ClientProfile

    ClientProfile.objects.filter(pk=dsm_client.profile.pk).update(extra_claims={"tier": {"const": 3}})
    stored = Application.objects.get(pk=dsm_client.pk).client_secret
    response = mael_admin.post(change_url(dsm_client), change_form(dsm_client, name="Renamed",
                                                                   redirect_uris=f"{RP_REDIRECT}\nhttps://b.example.com/"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    app = Application.objects.get(pk=dsm_client.pk)
    assert (app.name, app.client_secret) == ("Renamed", stored)
    assert app.redirect_uris == f"{RP_REDIRECT} https://b.example.com/"
    assert app.profile.extra_claims == {"tier": {"const": 3}}


def test_a_public_app_made_confidential_gets_a_secret_shown_once(mael_admin, public_client):
    response = mael_admin.post(change_url(public_client), change_form(public_client, client_type="confidential"))
    assert response.status_code == 200
    secret = shown_secret(response.content.decode())
    app = Application.objects.get(pk=public_client.pk)
    assert app.client_type == "confidential" and check_password(secret, app.client_secret)


# --- rotate secret ----------------------------------------------------------------------------------
def test_rotate_secret_asks_first_then_shows_the_new_one_and_the_old_one_stops_working(mael_admin, dsm_client):
    page = mael_admin.get(change_url(dsm_client)).content.decode()
    assert 'id="tool-rotate-secret"' in page and f'action="{rotate_url(dsm_client)}"' in page
    stored = Application.objects.get(pk=dsm_client.pk).client_secret

    confirm = mael_admin.post(rotate_url(dsm_client))
    assert confirm.status_code == 200 and b'name="confirm"' in confirm.content
    assert Application.objects.get(pk=dsm_client.pk).client_secret == stored
    assert mael_admin.get(rotate_url(dsm_client)).status_code == 405

    response = mael_admin.post(rotate_url(dsm_client), {"confirm": "yes"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    page = response.content.decode()
    secret = shown_secret(page)
    assert page.count(secret) == 1 and "will not be shown again" in page
    app = Application.objects.get(pk=dsm_client.pk)
    assert app.client_secret != stored and check_password(secret, app.client_secret)

    old = exchange(mael_admin, "ds923-dsm", get_code(mael_admin, "ds923-dsm"), DSM_SECRET)
    assert old.status_code == 401 and old.json()["error"] == "invalid_client"
    new = exchange(mael_admin, "ds923-dsm", get_code(mael_admin, "ds923-dsm"), secret)
    assert new.status_code == 200, new.content
    assert secret not in mael_admin.get(change_url(dsm_client)).content.decode()


def test_a_config_managed_app_is_read_only_without_rotate(mael_admin, nas):
    from identityhub.oidc.services import register_client

    app, _ = register_client("managed-dsm", name="Managed", redirect_uris=[RP_REDIRECT], client_secret=DSM_SECRET,
                             nas=nas, managed=True)
    page = mael_admin.get(change_url(app)).content.decode()
    assert 'id="config-managed-note"' in page
    assert 'name="redirect_uris"' not in page and "tool-rotate-secret" not in page
    assert "connect-dsm" in page  # the values are still there to copy
    assert mael_admin.post(rotate_url(app), {"confirm": "yes"}).status_code == 403
    assert mael_admin.post(change_url(app), change_form(app, name="x")).status_code == 403
    assert Application.objects.get(pk=app.pk).name == "Managed"


# --- Connect DSM ---------------------------------------------------------------------------------------
def test_connect_dsm_values_equal_the_discovery_document(mael_admin, dsm_client):
    page = mael_admin.get(change_url(dsm_client)).content.decode()
    assert 'id="connect-dsm"' in page
    discovery = mael_admin.get("/.well-known/openid-configuration").json()
    well_known = value_of(page, "well-known-url")
    assert well_known == f"{discovery['issuer']}/.well-known/openid-configuration"
    assert mael_admin.get(well_known.removeprefix(discovery["issuer"])).json() == discovery
    assert value_of(page, "profile") == "OIDC"
    assert value_of(page, "account-type") == "Domain/LDAP/local"
    assert value_of(page, "name") == "DSM on DS923+"
    assert value_of(page, "application-id") == "ds923-dsm"
    assert value_of(page, "redirect-url") == RP_REDIRECT
    assert set(value_of(page, "scope").split()) <= set(discovery["scopes_supported"])
    assert value_of(page, "username-claim") == "username" and "username" in discovery["claims_supported"]
    assert discovery["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "shown once at creation — rotate to get a new one" in page
    assert page.count('class="hub-copy"') == 8  # every value but the secret has a copy button


def test_a_public_app_has_no_connect_dsm(mael_admin, public_client):
    assert 'id="connect-dsm"' not in mael_admin.get(change_url(public_client)).content.decode()


# --- claims preview ----------------------------------------------------------------------------------
def _id_token_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _pre(page: str, element_id: str) -> dict:
    match = re.search(rf'<pre class="hub-claims" id="{element_id}">(.*?)</pre>', page, re.S)
    assert match, page[:3000]
    return json.loads(html.unescape(match.group(1)))


def test_claims_preview_shows_what_the_app_receives(mael_admin, dsm_client, mael):
    page = mael_admin.get(change_url(dsm_client)).content.decode()
    assert f'href="{claims_url(dsm_client)}"' in page
    response = mael_admin.get(claims_url(dsm_client), {"person": mael.pk, "scopes": ["openid", "email"]})
    page = html.unescape(response.content.decode())
    assert '"username": "mael.valais"' in page
    userinfo, id_token = _pre(page, "claims-userinfo"), _pre(response.content.decode(), "claims-id-token")

    # the exact claims of a real sign-in with the same scopes
    tokens = exchange(mael_admin, "ds923-dsm", get_code(mael_admin, "ds923-dsm", scope="openid email"),
                      DSM_SECRET).json()
    real = _id_token_claims(tokens["id_token"])
    from identityhub.oidc.claims import PER_SIGN_IN_CLAIMS

    assert {k: v for k, v in real.items() if k not in PER_SIGN_IN_CLAIMS} == id_token
    real_userinfo = mael_admin.get("/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").json()
    assert real_userinfo == userinfo


def test_claims_preview_says_why_someone_is_refused(mael_admin, dsm_client, people):
    response = mael_admin.get(claims_url(dsm_client), {"person": people["no_nas"].pk})
    page = html.unescape(response.content.decode())
    assert 'id="claims-refusal"' in page and "no_nas_account" in page
    assert "no.nas@example.com has no account on DS923+" in page
    assert 'id="claims-id-token"' not in page


def test_claims_preview_offers_only_the_admins_people(mael_admin, dsm_client, people):
    page = mael_admin.get(claims_url(dsm_client)).content.decode()
    assert "mum@example.com" in page and "outsider@example.org" not in page
    response = mael_admin.get(claims_url(dsm_client), {"person": people["outsider"].pk})
    assert b"Select a valid choice" in response.content and b"claims-result" not in response.content


def test_hub_claims_uses_the_same_service(dsm_client, mael):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("hub", "claims", "mael@example.com", "ds923-dsm", "--scope", "openid email", stdout=out)
    from identityhub.oidc.claims import preview_claims

    assert json.loads(out.getvalue()) == preview_claims(mael, dsm_client, ["openid", "email"]).userinfo


# --- scoping --------------------------------------------------------------------------------------------
def test_another_households_admin_cannot_reach_valais_apps(neighbour_admin, dsm_client, mael):
    for url in (change_url(dsm_client), claims_url(dsm_client), f"{claims_url(dsm_client)}?person={mael.pk}",
                f"/admin/oauth2_provider/application/{dsm_client.pk}/history/",
                f"/admin/oauth2_provider/application/{dsm_client.pk}/delete/"):
        assert neighbour_admin.get(url).status_code == 404, url
    stored = Application.objects.get(pk=dsm_client.pk).client_secret
    assert neighbour_admin.post(rotate_url(dsm_client), {"confirm": "yes"}).status_code == 404
    assert neighbour_admin.post(change_url(dsm_client), change_form(dsm_client, name="x")).status_code == 404
    assert Application.objects.get(pk=dsm_client.pk).client_secret == stored
    changelist = neighbour_admin.get("/admin/oauth2_provider/application/").content.decode()
    assert "ds923-dsm" not in changelist and "DSM on DS923+" not in changelist


def test_another_households_admin_cannot_pick_valais_nas_or_household(neighbour_admin, dsm_client):
    page = neighbour_admin.get(ADD_URL).content.decode()
    assert 'value="neighbours"' in page
    assert 'value="ds923"' not in page and 'value="valais"' not in page
    response = neighbour_admin.post(ADD_URL, dsm_form(client_id="sneaky", nas="ds923"))
    assert response.status_code == 200 and b"Select a valid choice" in response.content
    response = neighbour_admin.post(ADD_URL, dsm_form(client_id="sneaky", nas="", households=["valais"]))
    assert response.status_code == 200 and b"Select a valid choice" in response.content
    assert not Application.objects.filter(client_id="sneaky").exists()


def test_editing_a_shared_app_keeps_the_households_the_admin_cannot_see(mael_admin, household, other_household):
    from identityhub.oidc.services import register_client

    app, _ = register_client("photos", name="Photos", redirect_uris=[RP_REDIRECT], public=True,
                             households=[household, other_household])
    page = mael_admin.get(change_url(app)).content.decode()
    assert 'value="neighbours"' not in page and "1 household you do not administer" in page
    response = mael_admin.post(change_url(app), change_form(app, name="Family photos", households=["valais"]))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert set(app.profile.households.values_list("pk", flat=True)) == {"valais", "neighbours"}
    # and they may not delete it from under the other household
    assert mael_admin.get(f"/admin/oauth2_provider/application/{app.pk}/delete/").status_code == 403


def test_an_app_on_another_households_nas_keeps_its_nas(neighbour_admin, dsm_client, other_household):
    from identityhub.oidc.services import change_client

    change_client(dsm_client, name="DSM on DS923+", redirect_uris=[RP_REDIRECT], nas=dsm_client.profile.nas,
                  households=[other_household], skip_consent=True)
    app = Application.objects.get(pk=dsm_client.pk)
    page = neighbour_admin.get(change_url(app)).content.decode()
    assert "Another household&#x27;s NAS" in page or "Another household's NAS" in page
    response = neighbour_admin.post(change_url(app), change_form(app, name="Shared DSM", nas=""))
    assert response.status_code == 302, response.context["adminform"].form.errors
    app = Application.objects.get(pk=dsm_client.pk)
    assert app.name == "Shared DSM" and app.profile.nas_id == "ds923"


def test_an_operator_reaches_every_app(operator_admin, dsm_client, mael):
    assert operator_admin.get(change_url(dsm_client)).status_code == 200
    assert b"ds923-dsm" in operator_admin.get("/admin/oauth2_provider/application/").content
    assert b"mael.valais" in operator_admin.get(claims_url(dsm_client), {"person": mael.pk}).content
    assert b'value="neighbours"' in operator_admin.get(ADD_URL).content


def test_the_scope_is_registered_for_applications_and_profiles(people, dsm_client, public_client):
    from accounts.admin_scoping import scope_queryset
    from identityhub.oidc.models import ClientProfile

    mael, outsider = people["mael"], people["outsider"]
    assert set(scope_queryset(Application.objects.all(), mael)) == {dsm_client, public_client}
    assert set(scope_queryset(ClientProfile.objects.all(), mael)) == {dsm_client.profile, public_client.profile}
    assert not scope_queryset(Application.objects.all(), outsider).exists()


# --- signing keys and consents: operators only ---------------------------------------------------------
def test_signing_keys_are_the_operators(neighbour_admin, mael_admin, dsm_client):
    from identityhub.oidc import keys
    from identityhub.oidc.models import SigningKey

    active = keys.ensure_active_key()
    for client in (neighbour_admin, mael_admin):
        assert client.get("/admin/oidc/signingkey/").status_code in (403, 404)
        assert client.get(f"/admin/oidc/signingkey/{active.pk}/change/").status_code in (403, 404)
        assert client.post("/admin/oidc/signingkey/rotate/").status_code in (403, 404)
        assert client.get("/admin/oidc/consent/").status_code in (403, 404)
    assert SigningKey.objects.get(active=True) == active


def test_the_active_signing_key_cannot_be_deleted(operator_admin):
    from identityhub.oidc import keys
    from identityhub.oidc.models import SigningKey

    active = keys.ensure_active_key()
    page = operator_admin.get(f"/admin/oidc/signingkey/{active.pk}/change/").content.decode()
    assert "deletelink" not in page and 'id="tool-rotate-key"' in page
    assert 'name="kid"' not in page  # read-only
    assert operator_admin.get(f"/admin/oidc/signingkey/{active.pk}/delete/").status_code == 403
    response = operator_admin.post("/admin/oidc/signingkey/", {"action": "delete_selected",
                                                               "_selected_action": [active.pk], "post": "yes"})
    assert response.status_code == 403  # Django's bulk delete asks has_delete_permission for each object
    assert SigningKey.objects.filter(pk=active.pk, active=True).exists()


def test_rotate_makes_a_new_active_key_and_keeps_the_old_one_published(operator_admin):
    from identityhub.oidc import keys
    from identityhub.oidc.models import SigningKey

    old = keys.ensure_active_key()
    assert b'id="tool-rotate-key"' in operator_admin.get("/admin/oidc/signingkey/").content
    assert operator_admin.get("/admin/oidc/signingkey/rotate/").status_code == 405
    response = operator_admin.post("/admin/oidc/signingkey/rotate/")
    assert response.status_code == 302
    new = SigningKey.objects.get(active=True)
    assert new.pk != old.pk
    old.refresh_from_db()
    assert not old.active and old.retired_at is not None
    assert keys.keyring().kid == new.kid
    # the retiring key is still published: not deletable either
    assert operator_admin.get(f"/admin/oidc/signingkey/{old.pk}/delete/").status_code == 403
    assert {k["kid"] for k in operator_admin.get("/.well-known/jwks.json").json()["keys"]} >= {old.kid, new.kid}


def test_a_long_retired_key_can_be_deleted(operator_admin, settings):
    from datetime import timedelta

    from django.utils import timezone

    from identityhub.oidc import keys
    from identityhub.oidc.models import SigningKey

    keys.ensure_active_key()
    keys.rotate()
    old = SigningKey.objects.get(active=False)
    SigningKey.objects.filter(pk=old.pk).update(
        retired_at=timezone.now() - timedelta(seconds=settings.HUB_KEY_RETIREMENT_SECONDS + 60))
    response = operator_admin.post(f"/admin/oidc/signingkey/{old.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not SigningKey.objects.filter(pk=old.pk).exists()
    assert SigningKey.objects.filter(active=True).exists()


def test_consents_are_listed_for_operators(operator_admin, mael, dsm_client):
    from identityhub.oidc.models import Consent

    Consent.objects.create(user=mael, application=dsm_client, scopes="openid email")
    page = operator_admin.get("/admin/oidc/consent/").content.decode()
    assert "mael@example.com" in page
    assert reverse("admin:oidc_consent_changelist") == "/admin/oidc/consent/"


def test_the_app_list_costs_a_fixed_number_of_queries(mael_admin, nas, household, django_assert_max_num_queries):
    from identityhub.oidc.services import register_client

    for i in range(6):
        register_client(f"app-{i}", redirect_uris=[RP_REDIRECT], public=True, households=[household], nas=nas)
    with django_assert_max_num_queries(9):
        page = mael_admin.get("/admin/oauth2_provider/application/").content.decode()
    assert "app-5" in page
