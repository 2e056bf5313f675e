"""Issue 9 item 6: signing out everywhere — OpenID Connect Back-Channel Logout 1.0.

ID tokens carry `sid`; discovery announces back-channel logout; signing out (at /logout/, at the hub's
/sign-out/, "Sign out everywhere" on /account/ and in the console), a deactivation and leaving a
household send signed logout tokens — as Celery jobs (eager here) — to a real HTTP receiver on
127.0.0.1, and revoke the clients' tokens.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from jwcrypto import jwk, jwt

from tests.conftest import DSM_SECRET, RP_REDIRECT, exchange, get_code, signed_in
from tests.fakes.rp_receiver import RPReceiver

pytestmark = pytest.mark.django_db

DSM_PATH = "/dsm/backchannel"
IMMICH_PATH = "/immich/backchannel"
EVENT = "http://schemas.openid.net/event/backchannel-logout"


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def receiver():
    with RPReceiver() as fake:
        yield fake


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run what the code queued with transaction.on_commit (the test's transaction never commits)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def set_backchannel(application, uri: str) -> None:
    profile = application.profile
    profile.backchannel_logout_uri = uri
    profile.save()


@pytest.fixture
def rps(eager_celery, receiver, dsm_client, public_client):
    """Both clients registered a back-channel logout URI on the receiver."""
    set_backchannel(dsm_client, receiver.url(DSM_PATH))
    set_backchannel(public_client, receiver.url(IMMICH_PATH))
    return receiver


def sign_in_to(client, client_id: str) -> dict:
    """A code flow in `client`'s browser session; returns the token response."""
    if client_id == "ds923-dsm":
        response = exchange(client, client_id, get_code(client, client_id), DSM_SECRET)
    else:
        from tests.conftest import pkce_pair

        verifier, challenge = pkce_pair()
        code = get_code(client, client_id, code_challenge=challenge, code_challenge_method="S256")
        response = exchange(client, client_id, code, code_verifier=verifier)
    assert response.status_code == 200, response.content
    return response.json()


def refresh(client, client_id: str, refresh_token: str):
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    if client_id == "ds923-dsm":
        form["client_secret"] = DSM_SECRET
    return Client().post("/token/", form)


def jwks(client) -> jwk.JWKSet:
    uri = client.get("/.well-known/openid-configuration").json()["jwks_uri"]
    return jwk.JWKSet.from_json(client.get(urlsplit(uri).path).content)


def verify(client, token: str, audience: str) -> tuple[dict, dict]:
    """The token's header and claims, verified against the published JWKS like an RP would."""
    issuer = client.get("/.well-known/openid-configuration").json()["issuer"]
    checked = jwt.JWT(jwt=token, key=jwks(client), algs=["RS256"],
                      check_claims={"iss": issuer, "aud": audience, "exp": None, "iat": None})
    return json.loads(checked.header), json.loads(checked.claims)


def logout_claims(client, receiver, path: str, audience: str) -> list[dict]:
    return [verify(client, token, audience)[1] for token in receiver.tokens(path)]


def id_token_claims(tokens: dict) -> dict:
    return json.loads(jwt.JWT(jwt=tokens["id_token"]).token.objects["payload"])


def audit(**filters) -> list[dict]:
    from identityhub.models import AuditEvent

    return [{"reason": e.reason, "client_id": e.client_id, **e.details}
            for e in AuditEvent.objects.filter(kind="token_revoked", **filters).order_by("pk")]


# --- sid, discovery -------------------------------------------------------------------------------
def test_id_tokens_carry_a_stable_sid_that_is_not_the_session_key(client, mael, dsm_client, public_client):
    from identityhub.oidc.models import ClientSession

    signed_in(client, mael)
    dsm = sign_in_to(client, "ds923-dsm")
    immich = sign_in_to(client, "immich")
    sid = id_token_claims(dsm)["sid"]
    assert sid and id_token_claims(immich)["sid"] == sid
    assert sid != client.session.session_key and sid not in client.cookies.output()
    # another browser is another hub session
    other = signed_in(Client(), mael)
    assert id_token_claims(sign_in_to(other, "ds923-dsm"))["sid"] != sid
    # a refreshed ID token repeats it (OIDC Core §12.2)
    refreshed = refresh(client, "ds923-dsm", dsm["refresh_token"]).json()
    assert id_token_claims(refreshed)["sid"] == sid
    assert set(ClientSession.objects.filter(user=mael, sid=sid).values_list("application__client_id", flat=True)) \
        == {"ds923-dsm", "immich"}


def test_a_code_exchange_records_its_client_session_in_one_statement(client, mael, dsm_client):
    from identityhub.oidc.models import ClientSession

    signed_in(client, mael)
    code = get_code(client, "ds923-dsm")
    with CaptureQueriesContext(connection) as queries:
        assert exchange(client, "ds923-dsm", code, DSM_SECRET).status_code == 200
    touching = [q["sql"] for q in queries.captured_queries if ClientSession._meta.db_table in q["sql"]]
    assert len(touching) == 1 and touching[0].upper().startswith("INSERT") and "ON CONFLICT" in touching[0].upper()
    # a second exchange in the same session updates the row instead of adding one
    exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), DSM_SECRET)
    assert ClientSession.objects.filter(user=mael).count() == 1


def test_discovery_announces_back_channel_logout(client):
    doc = client.get("/.well-known/openid-configuration").json()
    assert doc["backchannel_logout_supported"] is True
    assert doc["backchannel_logout_session_supported"] is True


# --- RP-initiated logout --------------------------------------------------------------------------
def test_logout_sends_a_verifiable_logout_token_and_the_refresh_token_stops_working(client, mael, rps, on_commit):
    signed_in(client, mael)
    tokens = sign_in_to(client, "ds923-dsm")
    sid = id_token_claims(tokens)["sid"]
    with on_commit():
        response = client.get("/logout/", {"id_token_hint": tokens["id_token"], "client_id": "ds923-dsm"})
    assert response.status_code == 302 and response["Location"].endswith("/logged-out/")

    [request] = rps.requests_to(DSM_PATH)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    [token] = rps.tokens(DSM_PATH)
    header, claims = verify(client, token, "ds923-dsm")
    assert header["typ"] == "logout+jwt" and header["alg"] == "RS256"
    assert header["kid"] in {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert claims["sub"] == str(mael.public_id) and claims["sid"] == sid and claims["aud"] == "ds923-dsm"
    assert claims["events"] == {EVENT: {}}
    assert "nonce" not in claims and claims["jti"]
    assert 0 < claims["exp"] - claims["iat"] <= 120 and abs(claims["iat"] - time.time()) < 60

    assert refresh(client, "ds923-dsm", tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert Client().get("/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 401
    assert {"reason": "rp_logout", "client_id": "ds923-dsm", "backchannel": "delivered", "attempts": 1,
            "status": 200} in audit()


def test_logout_at_one_device_leaves_the_other_devices_apps_signed_in(mael, rps, on_commit):
    """DOT itself would delete every token of the person at /logout/, on every device, telling no app."""
    laptop, phone = signed_in(Client(), mael), signed_in(Client(), mael)
    on_laptop, on_phone = sign_in_to(laptop, "ds923-dsm"), sign_in_to(phone, "immich")
    with on_commit():
        laptop.get("/logout/", {"id_token_hint": on_laptop["id_token"], "client_id": "ds923-dsm"})
    assert refresh(laptop, "ds923-dsm", on_laptop["refresh_token"]).status_code == 400
    assert refresh(phone, "immich", on_phone["refresh_token"]).status_code == 200
    assert rps.tokens(IMMICH_PATH) == []


def test_logout_with_a_hint_from_before_sids_still_revokes_that_clients_tokens(client, mael, dsm_client, on_commit):
    from oauth2_provider.models import RefreshToken

    from identityhub.oidc.models import ClientSession, RedeemedCode

    signed_in(client, mael)
    tokens = sign_in_to(client, "ds923-dsm")
    RedeemedCode.objects.update(sid="")  # as issued before this change: no sid anywhere
    ClientSession.objects.all().delete()
    client.logout()
    with on_commit():
        client.get("/logout/", {"id_token_hint": tokens["id_token"], "client_id": "ds923-dsm"})
    assert not RefreshToken.objects.filter(user=mael, revoked__isnull=True).exists()


def test_logout_without_a_session_uses_the_hints_sid(client, mael, rps, on_commit):
    signed_in(client, mael)
    tokens = sign_in_to(client, "ds923-dsm")
    sid = id_token_claims(tokens)["sid"]
    client.logout()  # the hub session is gone already (e.g. expired)
    with on_commit():
        client.get("/logout/", {"id_token_hint": tokens["id_token"], "client_id": "ds923-dsm"})
    assert [c["sid"] for c in logout_claims(client, rps, DSM_PATH, "ds923-dsm")] == [sid]


# --- the hub's own sign-out, and everywhere ----------------------------------------------------------
def test_signing_out_at_the_hub_signs_out_this_sessions_apps_only(mael, rps, on_commit):
    laptop, phone = signed_in(Client(), mael), signed_in(Client(), mael)
    on_laptop = sign_in_to(laptop, "ds923-dsm")
    on_phone = sign_in_to(phone, "ds923-dsm")
    with on_commit():
        assert laptop.post("/sign-out/")["Location"].endswith("/logged-out/")
    assert [c["sid"] for c in logout_claims(laptop, rps, DSM_PATH, "ds923-dsm")] == \
        [id_token_claims(on_laptop)["sid"]]
    assert refresh(laptop, "ds923-dsm", on_laptop["refresh_token"]).status_code == 400
    assert refresh(phone, "ds923-dsm", on_phone["refresh_token"]).status_code == 200  # the phone stays signed in
    assert phone.get("/account/").status_code == 200


def test_sign_out_everywhere_from_the_account_page_reaches_every_client(mael, rps, on_commit):
    laptop, phone = signed_in(Client(enforce_csrf_checks=True), mael), signed_in(Client(), mael)
    laptop_dsm, laptop_immich = sign_in_to(laptop, "ds923-dsm"), sign_in_to(laptop, "immich")
    phone_dsm = sign_in_to(phone, "ds923-dsm")
    page = laptop.get("/account/").content.decode()
    assert 'id="sign-out-everywhere"' in page and 'action="/sign-out/everywhere/"' in page
    assert laptop.post("/sign-out/everywhere/").status_code == 403  # CSRF-protected
    assert laptop.get("/sign-out/everywhere/").status_code == 405
    token = laptop.cookies["csrftoken"].value
    with on_commit():
        response = laptop.post("/sign-out/everywhere/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"].endswith("/logged-out/")

    assert sorted(c["sid"] for c in logout_claims(laptop, rps, DSM_PATH, "ds923-dsm")) == sorted(
        [id_token_claims(laptop_dsm)["sid"], id_token_claims(phone_dsm)["sid"]])
    assert [c["sid"] for c in logout_claims(laptop, rps, IMMICH_PATH, "immich")] == \
        [id_token_claims(laptop_immich)["sid"]]
    for client_id, tokens in [("ds923-dsm", laptop_dsm), ("immich", laptop_immich), ("ds923-dsm", phone_dsm)]:
        assert refresh(phone, client_id, tokens["refresh_token"]).status_code == 400
    # the hub sessions end too: this one and the phone's
    assert laptop.get("/account/").status_code == 302
    assert phone.get("/account/").status_code == 302


def test_the_button_speaks_french_and_german(client, mael):
    signed_in(client, mael)
    assert "Se déconnecter partout" in client.get("/account/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Überall abmelden" in client.get("/account/", HTTP_ACCEPT_LANGUAGE="de").content.decode()


def test_a_client_without_a_backchannel_uri_still_loses_its_tokens(client, mael, rps, public_client, on_commit):
    set_backchannel(public_client, "")
    signed_in(client, mael)
    tokens = sign_in_to(client, "immich")
    with on_commit():
        client.post("/sign-out/")
    assert rps.received == []
    assert refresh(client, "immich", tokens["refresh_token"]).status_code == 400
    assert audit() == [{"reason": "sign_out", "client_id": "immich", "backchannel": "not_registered"}]


# --- deactivation, leaving a household --------------------------------------------------------------
def test_leaving_a_household_signs_out_that_households_apps_only(mael, household, other_household, rps, on_commit):
    from accounts.models import Membership
    from accounts.services import MemberSpec, set_members
    from identityhub.oidc.services import register_client

    neighbours_app, _ = register_client("next-door", name="Next door", redirect_uris=[RP_REDIRECT], public=True,
                                        households=[other_household], skip_consent=True)
    set_backchannel(neighbours_app, rps.url("/next-door/backchannel"))
    Membership.objects.create(user=mael, household=other_household)
    browser = signed_in(Client(), mael)
    immich = sign_in_to(browser, "immich")
    next_door = sign_in_to(browser, "next-door")

    with on_commit():  # the config (or the console) takes mael out of the neighbours
        set_members(other_household, [MemberSpec("outsider@example.org", "Out Sider")])
    assert len(rps.tokens("/next-door/backchannel")) == 1
    assert rps.tokens(IMMICH_PATH) == []
    assert refresh(browser, "next-door", next_door["refresh_token"]).status_code == 400
    assert refresh(browser, "immich", immich["refresh_token"]).status_code == 200
    assert browser.get("/account/").status_code == 200  # still signed in to the hub


def test_a_membership_deleted_in_a_rolled_back_transaction_sends_nothing(mael, household, rps, on_commit):
    from accounts.models import Membership

    browser = signed_in(Client(), mael)
    tokens = sign_in_to(browser, "immich")
    with on_commit(), pytest.raises(RuntimeError), transaction.atomic():
        Membership.objects.filter(user=mael, household=household).delete()
        raise RuntimeError("rolled back")
    assert rps.received == []
    assert refresh(browser, "immich", tokens["refresh_token"]).status_code == 200


def test_the_policy_is_asked_after_the_commit_not_halfway(mael, household, rps, on_commit):
    """Deleted and made again in one transaction (as a rewritten member list may): still a member."""
    from accounts.models import Membership

    browser = signed_in(Client(), mael)
    tokens = sign_in_to(browser, "immich")
    with on_commit(), transaction.atomic():
        Membership.objects.filter(user=mael, household=household).delete()
        Membership.objects.create(user=mael, household=household, role="admin")
    assert rps.received == []
    assert refresh(browser, "immich", tokens["refresh_token"]).status_code == 200


def test_deactivation_signs_out_everything(mael, rps, on_commit):
    from accounts.services import deactivate_person

    laptop, phone = signed_in(Client(), mael), signed_in(Client(), mael)
    laptop_dsm, phone_immich = sign_in_to(laptop, "ds923-dsm"), sign_in_to(phone, "immich")
    with on_commit():
        deactivate_person(mael)
    assert len(rps.tokens(DSM_PATH)) == 1 and len(rps.tokens(IMMICH_PATH)) == 1
    from oauth2_provider.models import AccessToken, RefreshToken

    assert not AccessToken.objects.filter(user=mael).exists()
    assert not RefreshToken.objects.filter(user=mael, revoked__isnull=True).exists()
    assert {e["reason"] for e in audit()} == {"deactivated"}
    assert laptop_dsm and phone_immich


def test_turning_is_active_off_in_the_console_signs_out_everything(mael, rps, on_commit):
    browser = signed_in(Client(), mael)
    sign_in_to(browser, "ds923-dsm")
    mael.is_active = False
    with on_commit():
        mael.save()  # as the console's change form does (no update_fields)
    assert len(rps.tokens(DSM_PATH)) == 1


def test_deleting_a_person_tells_their_apps_first(mum, rps, on_commit):
    browser = signed_in(Client(), mum)
    sign_in_to(browser, "ds923-dsm")
    public_id = str(mum.public_id)
    with on_commit():
        mum.delete()  # an operator's delete: tokens and sessions go with the row
    assert [c["sub"] for c in logout_claims(browser, rps, DSM_PATH, "ds923-dsm")] == [public_id]


# --- delivery: retries, redirects, timeouts ---------------------------------------------------------------
def test_a_receiver_answering_500_is_retried_a_bounded_number_of_times_then_recorded_as_failed(
        client, mael, rps, on_commit):
    rps.answer(DSM_PATH, status=500)
    signed_in(client, mael)
    sign_in_to(client, "ds923-dsm")
    with on_commit():
        client.post("/sign-out/")
    tokens = rps.tokens(DSM_PATH)
    assert len(tokens) == 4  # the first attempt and 3 retries (10 s, 60 s, 300 s apart in a worker)
    assert len({verify(client, t, "ds923-dsm")[1]["jti"] for t in tokens}) == 4  # a fresh token each time
    failed = [e for e in audit() if e.get("backchannel") == "failed"]
    assert failed == [{"reason": "sign_out", "client_id": "ds923-dsm", "backchannel": "failed", "attempts": 4,
                       "status": 500, "error": "HTTP 500"}]


def test_a_redirecting_receiver_is_not_followed_nor_retried(client, mael, rps, on_commit):
    rps.answer(DSM_PATH, status=307, location=rps.url("/elsewhere"))
    signed_in(client, mael)
    sign_in_to(client, "ds923-dsm")
    with on_commit():
        client.post("/sign-out/")
    assert len(rps.requests_to(DSM_PATH)) == 1 and rps.requests_to("/elsewhere") == []
    assert {"reason": "sign_out", "client_id": "ds923-dsm", "backchannel": "failed", "attempts": 1, "status": 307,
            "error": "redirect not followed"} in audit()


def test_a_hanging_receiver_times_out_and_is_retried(client, mael, rps, on_commit, monkeypatch):
    from identityhub.oidc import backchannel

    monkeypatch.setattr(backchannel, "TIMEOUT", (0.5, 0.3))
    rps.answer(DSM_PATH, hang=5)
    signed_in(client, mael)
    sign_in_to(client, "ds923-dsm")
    started = time.monotonic()
    with on_commit():
        client.post("/sign-out/")
    assert time.monotonic() - started < 4
    assert len(rps.requests_to(DSM_PATH)) == 4
    assert {"reason": "sign_out", "client_id": "ds923-dsm", "backchannel": "failed", "attempts": 4,
            "error": "timed out"} in audit()


# --- the console ------------------------------------------------------------------------------------------
def test_the_console_signs_a_person_out_everywhere(mael_console, mael, mum, rps, on_commit):
    browser = signed_in(Client(), mum)
    tokens = sign_in_to(browser, "ds923-dsm")
    url = f"/admin/accounts/user/{mum.pk}/sign-out-everywhere/"
    page = mael_console.get(f"/admin/accounts/user/{mum.pk}/change/").content.decode()
    assert f'action="{url}"' in page and 'id="tool-sign-out-everywhere"' in page
    assert mael_console.get(url).status_code == 405
    with on_commit():
        response = mael_console.post(url)
    assert response.status_code == 302 and response["Location"] == f"/admin/accounts/user/{mum.pk}/change/"
    assert [c["sub"] for c in logout_claims(browser, rps, DSM_PATH, "ds923-dsm")] == [str(mum.public_id)]
    assert refresh(browser, "ds923-dsm", tokens["refresh_token"]).status_code == 400
    assert browser.get("/account/").status_code == 302  # mum's hub session ended too
    assert mael_console.get("/admin/").status_code == 200  # the admin's own session is untouched


def test_the_console_tool_is_a_404_for_another_households_admin(neighbour_console, mael, rps, on_commit):
    browser = signed_in(Client(), mael)
    tokens = sign_in_to(browser, "ds923-dsm")
    with on_commit():
        response = neighbour_console.post(f"/admin/accounts/user/{mael.pk}/sign-out-everywhere/")
    assert response.status_code == 404
    assert rps.received == []
    assert refresh(browser, "ds923-dsm", tokens["refresh_token"]).status_code == 200


def test_the_app_page_sets_the_backchannel_logout_uri(mael_console, dsm_client):
    from identityhub.oidc.models import ClientProfile

    url = f"/admin/oauth2_provider/application/{dsm_client.pk}/change/"
    form = {"name": dsm_client.name, "client_type": dsm_client.client_type, "redirect_uris": RP_REDIRECT,
            "post_logout_redirect_uris": "", "nas": "ds923", "skip_authorization": "on", "_save": "Save"}
    refused = mael_console.post(url, {**form, "backchannel_logout_uri": "http://dsm.example.com/logout"})
    assert refused.status_code == 200 and "must use https" in refused.content.decode()
    response = mael_console.post(url, {**form, "backchannel_logout_uri": "https://dsm.example.com/bcl"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ClientProfile.objects.get(application=dsm_client).backchannel_logout_uri == "https://dsm.example.com/bcl"
    assert 'value="https://dsm.example.com/bcl"' in mael_console.get(url).content.decode()


# --- the config file ---------------------------------------------------------------------------------------
def test_config_round_trip_with_backchannel_logout_uri(write, secrets_env, db):
    from identityhub.oidc.models import ClientProfile
    from tests.config.conftest import CONFIG, call_hub

    line = "    redirect_uris: [https://photos.example.com/callback]\n"
    assert CONFIG.count(line) == 1
    with_uri = CONFIG.replace(line, line + "    backchannel_logout_uri: https://photos.example.com/bcl\n")
    bad = write(CONFIG.replace(line, line + "    backchannel_logout_uri: http://photos.example.com/bcl\n"), "bad.yaml")
    checked = call_hub("check", bad)
    key_line = CONFIG[:CONFIG.index(line)].count("\n") + 2  # 1-based, the line after redirect_uris
    assert checked.code == 1
    assert f"bad.yaml:{key_line}:29: client photos: back-channel logout URI 'http://photos.example.com/bcl' " \
        "must use https" in checked.err, checked.err

    path = write(with_uri, "hub.yaml")
    assert call_hub("check", path).code == 0
    assert call_hub("apply", path).code == 0
    assert ClientProfile.objects.get(application__client_id="photos").backchannel_logout_uri == \
        "https://photos.example.com/bcl"
    assert call_hub("plan", path).out.strip().endswith("No changes.")
    changed = write(with_uri.replace("photos.example.com/bcl", "photos.example.com/logout/backchannel"), "c.yaml")
    assert "~ client photos: backchannel_logout_uri" in call_hub("plan", changed).out
    exported = call_hub("export").out
    assert "backchannel_logout_uri: https://photos.example.com/bcl" in exported
    assert exported.count("backchannel_logout_uri") == 1  # clients without one export no key


@pytest.fixture
def write(tmp_path):
    def make(text: str, name: str) -> str:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    return make


@pytest.fixture
def secrets_env(monkeypatch):
    from tests.config import conftest

    monkeypatch.setenv("GOOGLE_CLIENT_SECRET", conftest.GOOGLE_SECRET)
    monkeypatch.setenv("SYNO_PASSWORD", conftest.SYNO_PASSWORD)
    monkeypatch.setenv("DSM_CLIENT_SECRET", conftest.DSM_SECRET)
    monkeypatch.setenv("WEB_CLIENT_SECRET", conftest.WEB_SECRET)


@pytest.fixture
def mael_console(client, mael):
    return signed_in(client, mael)


@pytest.fixture
def neighbour_console(people, other_household):
    from accounts.models import Membership

    Membership.objects.filter(household=other_household, user=people["outsider"]).update(role="admin")
    return signed_in(Client(), people["outsider"])
