"""Issue 9 items 7, 8 and 9: who a sign-in link belongs to, how emails compare, and what anonymous
requests may leave behind.

7. A link is (upstream, subject) *under the upstream's issuer*: after the issuer changes, a colliding
   `sub` at the new issuer is nobody (its links are dropped by `hub apply` and by the console).
8. Emails fold ASCII letters only: a Kelvin sign (U+212A) is not a `k`.
9. Housekeeping clears expired sessions and social-auth leftovers; callbacks without a pending sign-in
   are counted, not audited; /login*, /complete* and failed client authentication at /token/ are
   rate-limited (429 + Retry-After).
"""

from __future__ import annotations

import pytest
from social_django.models import UserSocialAuth

from accounts.models import User, normalize_email
from identityhub.models import AuditEvent
from tests.conftest import upstream_round_trip
from tests.fakes.oidc_upstream import Identity

pytestmark = pytest.mark.django_db

KELVIN = "\u212a"  # KELVIN SIGN: str.lower() turns it into an ASCII "k"


# --- 8. ASCII-only case folding ---------------------------------------------------------------
@pytest.fixture
def kate(household):
    from accounts.services import add_member

    return add_member(household, "kate@example.com", "Kate")


def test_normalize_email_folds_ascii_letters_only():
    assert normalize_email("  Kate@Example.COM ") == "kate@example.com"
    assert normalize_email(f"{KELVIN}ate@example.com") == f"{KELVIN}ate@example.com"
    assert normalize_email("ÉLODIE@example.com") == "Élodie@example.com"  # stored emails stay as they were


def test_a_kelvin_sign_in_a_verified_address_is_not_another_persons_k(client, upstream_provider, google_like, kate):
    upstream_provider.identity = Identity(sub="g-kelvin", email=f"{KELVIN}ate@example.com")
    response = upstream_round_trip(client)
    assert response.status_code == 403
    assert b"not a member of any household" in response.content
    assert "_auth_user_id" not in client.session
    assert not UserSocialAuth.objects.exists()
    assert AuditEvent.objects.filter(kind="refusal", reason="unknown_person").exists()


def test_a_kelvin_sign_is_a_person_of_its_own_in_config_and_mappings(kate, nas):
    from synology.models import AccountMapping
    from synology.services import set_account_mappings

    set_account_mappings(nas, {f"{KELVIN}ATE@example.com": "kate"})
    assert list(AccountMapping.objects.filter(nas=nas).values_list("email", flat=True)) == [
        f"{KELVIN}ate@example.com"]
    mapping = AccountMapping(nas=nas, email=f" {KELVIN}IM@EXAMPLE.com", account_name="kim")
    mapping.save()
    assert mapping.email == f"{KELVIN}im@example.com"
    from accounts.services import declare_person

    assert declare_person(f"{KELVIN}ate@example.com") != kate


# --- 7. links are bound to the upstream's issuer ----------------------------------------------
@pytest.fixture
def issuer_b(make_upstream_provider):
    return make_upstream_provider()


@pytest.fixture
def work(db, upstream_provider):
    """Upstream `work` at issuer A (the `upstream_provider` fake)."""
    from tests.conftest import declare_fake_upstream

    return declare_fake_upstream("work", upstream_provider, "Work")


def _link_mael_at_a(client, upstream_provider, mael):
    upstream_provider.identity = Identity(sub="123", email="mael@example.com")
    assert upstream_round_trip(client, "work")["Location"] == "/profile/"
    client.logout()
    link = UserSocialAuth.objects.get(provider="work", uid="123")
    assert link.user == mael
    return link


def _attacker_at_b(client, issuer_b):
    """Someone at the new issuer whose `sub` collides, with an unverified, undeclared email."""
    issuer_b.identity = Identity(sub="123", email="attacker@evil.example", email_verified=False)
    return upstream_round_trip(client, "work")


def test_a_new_link_records_the_issuer_it_was_made_under(client, upstream_provider, work, mael):
    link = _link_mael_at_a(client, upstream_provider, mael)
    assert link.extra_data["iss"] == upstream_provider.issuer


def test_a_colliding_subject_at_a_new_issuer_is_not_the_old_person(client, upstream_provider, issuer_b, work, mael):
    """The attack, with the issuer changed behind the services' back (shell, old code, a restore)."""
    _link_mael_at_a(client, upstream_provider, mael)
    from accounts.models import Upstream

    Upstream.objects.filter(pk="work").update(issuer=issuer_b.issuer)
    response = _attacker_at_b(client, issuer_b)
    assert response.status_code == 403
    assert b"has not verified" in response.content
    assert "_auth_user_id" not in client.session
    assert not UserSocialAuth.objects.filter(provider="work", user=mael).exists()  # the stale link is gone
    # mael himself, at the new issuer, links again by his verified email
    issuer_b.identity = Identity(sub="b-mael", email="mael@example.com")
    assert upstream_round_trip(client, "work")["Location"] == "/profile/"
    assert client.session["_auth_user_id"] == str(mael.pk)
    link = UserSocialAuth.objects.get(provider="work", user=mael)
    assert (link.uid, link.extra_data["iss"]) == ("b-mael", issuer_b.issuer)


def test_an_id_token_from_another_issuer_is_refused(mael, work):
    from types import SimpleNamespace

    from accounts.pipeline import SignInRefused, link_declared_person

    backend = SimpleNamespace(upstream=work, name="work", id_token={"iss": "https://elsewhere.example"})
    with pytest.raises(SignInRefused) as refused:
        link_declared_person(backend, {"email": "mael@example.com"}, {"email_verified": True}, "123")
    assert refused.value.reason == "issuer_mismatch"


def test_google_links_are_bound_to_googles_fixed_issuer(db):
    from accounts.models import Upstream

    assert Upstream(id="g", type="google").effective_issuer == "https://accounts.google.com"
    assert Upstream(id="w", type="oidc", issuer="https://login.example.org/").effective_issuer == \
        "https://login.example.org"


WORK_CONFIG = """\
version: 1
issuer: http://127.0.0.1:8000
upstreams:
  - id: work
    type: oidc
    issuer: {issuer}
    client_id: hub-at-upstream
    client_secret: upstream-secret-0123456789-abcdefghijkl
households:
  - id: valais
    name: Valais family
    members:
      - {{email: mael@example.com, name: Maël Valais, role: admin}}
      - {{email: mum@example.com, name: Mum}}
"""


def test_hub_plan_says_an_issuer_change_drops_the_links_and_apply_drops_them(
        client, tmp_path, upstream_provider, issuer_b, mael, mum):
    from tests.config.conftest import call_hub

    path = tmp_path / "hub.yaml"
    path.write_text(WORK_CONFIG.format(issuer=upstream_provider.issuer), encoding="utf-8")
    assert call_hub("apply", str(path), "--adopt").code == 0
    _link_mael_at_a(client, upstream_provider, mael)
    upstream_provider.identity = Identity(sub="456", email="mum@example.com")
    upstream_round_trip(client, "work")
    client.logout()
    assert UserSocialAuth.objects.filter(provider="work").count() == 2

    path.write_text(WORK_CONFIG.format(issuer=issuer_b.issuer), encoding="utf-8")
    plan = call_hub("plan", str(path))
    assert plan.out.splitlines() == ["~ upstream work: issuer (its 2 sign-in links will be dropped)",
                                     "Plan: 0 to create, 1 to change, 0 to remove."], plan.output
    assert UserSocialAuth.objects.filter(provider="work").count() == 2  # plan touches nothing
    applied = call_hub("apply", str(path))
    assert applied.code == 0, applied.output
    assert not UserSocialAuth.objects.filter(provider="work").exists()
    assert _attacker_at_b(client, issuer_b).status_code == 403
    assert "_auth_user_id" not in client.session


def test_changing_the_issuer_in_the_console_drops_the_links(client, upstream_provider, issuer_b, work, mael):
    from django.urls import reverse

    from tests.conftest import signed_in

    _link_mael_at_a(client, upstream_provider, mael)
    operator = signed_in(client.__class__(), User.objects.create_superuser("op@example.com"))
    url = reverse("admin:accounts_upstream_change", args=["work"])
    form = {"id": "work", "type": "oidc", "name": "Work", "issuer": issuer_b.issuer, "client_id": "hub-at-upstream",
            "client_secret": "", "allowed_domains": "[]", "enabled": "on", "position": "0"}
    response = operator.post(url, form, follow=True)
    assert response.status_code == 200
    assert "1 sign-in link" in response.content.decode()
    assert not UserSocialAuth.objects.filter(provider="work").exists()
    assert _attacker_at_b(client, issuer_b).status_code == 403
    # an unchanged issuer keeps the links
    issuer_b.identity = Identity(sub="b-mael", email="mael@example.com")
    upstream_round_trip(client, "work")
    operator.post(url, {**form, "name": "Work (renamed)"})
    assert UserSocialAuth.objects.filter(provider="work", user=mael).exists()


def test_the_migration_records_the_current_issuer_of_existing_links(mael, work, google_like):
    import importlib

    from django.apps import apps

    UserSocialAuth.objects.create(user=mael, provider="work", uid="123", extra_data={})
    UserSocialAuth.objects.create(user=mael, provider="google", uid="g-1", extra_data={"iss": "kept"})
    UserSocialAuth.objects.create(user=mael, provider="gone", uid="x", extra_data={})
    migration = importlib.import_module("accounts.migrations.0004_bind_sign_in_links_to_issuers")
    migration.record_issuers(apps, None)
    iss = dict(UserSocialAuth.objects.values_list("provider", "extra_data__iss"))
    assert iss == {"work": work.issuer, "google": "kept", "gone": None}


# --- 9. what anonymous requests leave behind ---------------------------------------------------
def test_housekeeping_clears_expired_sessions_and_social_auth_leftovers(db):
    import time
    from datetime import timedelta

    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from social_django.models import Association, Code, Nonce, Partial

    from identityhub import housekeeping

    assert "accounts" in housekeeping.registered()
    now = timezone.now()
    for key, expires in (("expired", now - timedelta(seconds=1)), ("alive", now + timedelta(days=1))):
        Session.objects.create(session_key=f"{key}-session-key-0123456789", session_data=SessionStore().encode({}),
                               expire_date=expires)
    day_ago, fresh = int(time.time()) - 2 * 24 * 3600, int(time.time())
    Nonce.objects.create(server_url="social_core.oauth2.google", timestamp=day_ago, salt="old")
    Nonce.objects.create(server_url="social_core.oauth2.google", timestamp=fresh, salt="new")
    Association.objects.create(server_url="u", handle="old", secret="s", issued=day_ago, lifetime=1800,
                               assoc_type="st")
    Association.objects.create(server_url="u", handle="new", secret="s", issued=fresh, lifetime=1800,
                               assoc_type="st")
    old_code = Code.objects.create(email="a@example.com", code="c1")
    Code.objects.filter(pk=old_code.pk).update(timestamp=now - timedelta(days=2))
    Code.objects.create(email="a@example.com", code="c2")
    old_partial = Partial.objects.create(token="t1", next_step=1, backend="google", data={})
    Partial.objects.filter(pk=old_partial.pk).update(timestamp=now - timedelta(days=2))
    Partial.objects.create(token="t2", next_step=1, backend="google", data={})

    counts = housekeeping.run()
    assert counts["expired_sessions"] == 1 and counts["sign_in_leftovers"] == 4
    assert list(Session.objects.values_list("session_key", flat=True)) == ["alive-session-key-0123456789"]
    assert list(Nonce.objects.values_list("salt", flat=True)) == ["new"]
    assert list(Association.objects.values_list("handle", flat=True)) == ["new"]
    assert list(Code.objects.values_list("code", flat=True)) == ["c2"]
    assert list(Partial.objects.values_list("token", flat=True)) == ["t2"]


def test_a_callback_without_a_pending_sign_in_is_counted_not_audited(client, google_like):
    from django.contrib.sessions.models import Session
    from django.core.cache import cache

    from accounts.upstreams import orphan_callbacks

    before = orphan_callbacks("google")
    for _ in range(3):
        response = client.get("/complete/google/?state=x&code=y")
        assert response.status_code == 400
        assert b"did not work" in response.content and b"restart login" in response.content
    assert orphan_callbacks("google") == before + 3
    assert cache.get("hub:orphan_callbacks:google") == before + 3
    assert not AuditEvent.objects.exists()
    assert not Session.objects.exists()


def test_a_callback_with_a_pending_sign_in_is_still_audited(client, upstream_provider, google_like):
    from accounts.upstreams import orphan_callbacks

    before = orphan_callbacks("google")
    assert client.get("/login/google/").status_code == 302  # a sign-in is pending in this browser
    assert client.get("/complete/google/?state=forged&code=y").status_code == 400
    assert AuditEvent.objects.filter(kind="refusal", reason="upstream_error", upstream_id="google").exists()
    assert orphan_callbacks("google") == before


def test_a_pending_sign_in_session_of_an_anonymous_visitor_lives_an_hour_not_two_weeks(
        client, upstream_provider, google_like, mael):
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    client.get("/login/google/")
    session = Session.objects.get()
    assert session.expire_date < timezone.now() + timezone.timedelta(hours=2)
    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    client.logout()
    assert upstream_round_trip(client)["Location"] == "/profile/"
    assert client.session.get_expiry_age() > 24 * 3600  # signed in: the normal session age


@pytest.fixture
def tiny_limits(settings):
    """Small limits, counted under a prefix of this test's own (the cache is shared with other tests)."""
    import uuid

    settings.RATELIMIT_CACHE_PREFIX = f"rl-test-{uuid.uuid4().hex}:"
    settings.HUB_RATELIMIT_LOGIN = "3/m"
    settings.HUB_RATELIMIT_COMPLETE = "2/m"
    settings.HUB_RATELIMIT_TOKEN_FAILURES = "3/m"
    settings.HUB_RATELIMIT_TOKEN_CLIENT_FAILURES = "5/m"
    return settings


def _retry_after(response) -> int:
    assert response.status_code == 429, (response.status_code, response.content[:300])
    seconds = int(response["Retry-After"])
    assert 1 <= seconds <= 60
    return seconds


def test_sign_in_pages_are_rate_limited_per_address(client, upstream_provider, google_like, tiny_limits):
    for url in ("/login/", "/login/google/", "/login/nope/"):  # every /login* page counts, even a 404
        assert client.get(url).status_code in (302, 404)
    refused = client.get("/login/google/")
    _retry_after(refused)
    assert b"Too many" in refused.content
    assert client.get("/login/google/", REMOTE_ADDR="192.0.2.7").status_code == 302  # another address
    stray = client.__class__()  # no sign-in pending: not audited, only counted
    for _ in range(2):
        assert stray.get("/complete/google/?state=x").status_code == 400
    _retry_after(stray.get("/complete/google/?state=x"))
    assert not AuditEvent.objects.exists()


def test_behind_the_proxy_the_address_is_the_last_forwarded_hop(client, google_like, upstream_provider, tiny_limits):
    tiny_limits.HUB_BEHIND_PROXY = True
    for i in range(3):  # the client writes what it likes in front; the proxy appends what it saw
        assert client.get("/login/google/", HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 203.0.113.5").status_code == 302
    _retry_after(client.get("/login/google/", HTTP_X_FORWARDED_FOR="10.9.9.99, 203.0.113.5"))
    assert client.get("/login/google/", HTTP_X_FORWARDED_FOR="203.0.113.6").status_code == 302
    tiny_limits.HUB_BEHIND_PROXY = False  # not behind a proxy: the header is the client's, ignored
    for i in range(3):
        assert client.get("/login/google/", HTTP_X_FORWARDED_FOR=f"203.0.113.{90 + i}").status_code == 302
    _retry_after(client.get("/login/google/", HTTP_X_FORWARDED_FOR="203.0.113.97"))


def _wrong_secret(client, remote_addr="127.0.0.1", client_id="ds923-dsm"):
    return client.post("/token/", {"grant_type": "authorization_code", "code": "nope", "redirect_uri": "x",
                                   "client_id": client_id, "client_secret": "wrong-" + "x" * 30},
                       REMOTE_ADDR=remote_addr)


def test_failed_client_authentication_at_the_token_endpoint_is_limited_per_address(client, dsm_client, tiny_limits):
    for _ in range(3):
        assert _wrong_secret(client).status_code == 401
    refused = _wrong_secret(client)
    _retry_after(refused)
    assert refused.json() == {"error": "invalid_request", "error_description": "too many failed client "
                              "authentications; retry after the Retry-After delay"}
    assert refused["Cache-Control"] == "no-store"
    assert _wrong_secret(client, remote_addr="192.0.2.8").status_code == 401  # another address


def test_failed_client_authentication_is_limited_per_client_across_addresses(client, dsm_client, tiny_limits):
    import base64

    for i in range(5):
        assert _wrong_secret(client, remote_addr=f"192.0.2.{i}").status_code == 401
    _retry_after(_wrong_secret(client, remote_addr="192.0.2.50"))
    basic = base64.b64encode(b"ds923-dsm:wrong-secret").decode()  # the same client, named in HTTP Basic
    _retry_after(client.post("/token/", {"grant_type": "authorization_code", "code": "nope"},
                             HTTP_AUTHORIZATION=f"Basic {basic}", REMOTE_ADDR="192.0.2.51"))
    assert _wrong_secret(client, remote_addr="192.0.2.52", client_id="other").status_code == 401


def test_successful_token_exchanges_are_never_limited(client, mael, dsm_client, tiny_limits):
    from tests.conftest import DSM_SECRET, exchange, get_code, signed_in

    tiny_limits.HUB_RATELIMIT_TOKEN_FAILURES = "1/m"
    tiny_limits.HUB_RATELIMIT_TOKEN_CLIENT_FAILURES = "1/m"
    signed_in(client, mael)
    for _ in range(4):
        response = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), secret=DSM_SECRET)
        assert response.status_code == 200, response.content
    # a failed grant (not a failed client authentication) does not count either
    for _ in range(3):
        assert exchange(client, "ds923-dsm", "used-or-forged", secret=DSM_SECRET).status_code == 400
    assert exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), secret=DSM_SECRET).status_code == 200
