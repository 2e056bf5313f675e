"""Benchmark helper, run in a subprocess with the variant's settings (cwd = the tree under test):
fixture data + a signed-in session. Prints JSON {cookie, session_key, client_id, secret, …, queries}."""

import base64
import hashlib
import json
import os
import sys
import time
from urllib.parse import parse_qs, urlencode, urlsplit

sys.path.insert(0, os.getcwd())  # the tree under test (bench/sso_cycles.py --tree)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "identityhub.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.sessions.backends.base import SessionBase  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.services import MemberSpec, declare_household, set_members  # noqa: E402
from identityhub.oidc.keys import keyring  # noqa: E402
from identityhub.oidc.services import register_client  # noqa: E402
from synology.models import DSMAccount  # noqa: E402
from synology.services import declare_nas  # noqa: E402

CLIENT_ID = "bench-dsm"
SECRET = "bench-secret-" + "Zq8mW2xK5vN9pR3tY7bL1cF4hJ6gD0s"
REDIRECT = "http://127.0.0.1:9/cb"
SCOPE = "openid profile email"
PKCE_VERIFIER = "v" * 20 + "bench-verifier-0123456789-abcdefghijklmnop"
PKCE_CHALLENGE = "oUjqrQ4qEVBpY-kOQAGAhrwT6b5roJZe-hOnOU-DXps"  # S256 of PKCE_VERIFIER (checked below)
assert base64.urlsafe_b64encode(hashlib.sha256(PKCE_VERIFIER.encode()).digest()).rstrip(b"=").decode() == PKCE_CHALLENGE

household = declare_household("bench", "Bench family")
set_members(household, [MemberSpec("alice@example.com", "Alice", "admin")])
user = User.objects.get(email="alice@example.com")
nas = declare_nas("bench-nas", household=household, base_url="https://192.0.2.1:5001", enabled=False)
now = timezone.now()
DSMAccount.objects.update_or_create(nas=nas, name="alice", defaults={
    "email": user.email, "user": user, "linked_by": "email", "present": True, "first_seen": now, "last_seen": now})
register_client(CLIENT_ID, name="Bench DSM", redirect_uris=[REDIRECT], client_secret=SECRET, nas=nas,
                skip_consent=True)
keyring()

session: SessionBase = import_string(settings.SESSION_ENGINE + ".SessionStore")()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "accounts.auth_backends.UpstreamSessionBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session["hub_auth_time"] = int(time.time())
session["hub_sid"] = "bench-sid-0123456789abcdef"
session.create()

AUTH = os.environ.get("BENCH_AUTH", "basic")
PKCE = os.environ.get("BENCH_PKCE", "0") == "1"


def authorize_query(nonce: str) -> str:
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": SCOPE,
              "state": "st-" + nonce, "nonce": nonce}
    if PKCE:
        params |= {"code_challenge": PKCE_CHALLENGE, "code_challenge_method": "S256"}
    return urlencode(params)


def token_request(code: str) -> tuple[dict, dict]:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    headers = {}
    if AUTH == "basic":
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    else:
        form |= {"client_id": CLIENT_ID, "client_secret": SECRET}
    if PKCE:
        form["code_verifier"] = PKCE_VERIFIER
    return form, headers


# Queries per cycle, measured in-process on the same settings.
client = Client(HTTP_HOST="127.0.0.1")
client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
counts = []
for i in range(2):  # the second cycle is the steady state
    with CaptureQueriesContext(connection) as authorize_queries:
        response = client.get(f"/authorize/?{authorize_query(f'n{i}')}")
    code = parse_qs(urlsplit(response["Location"]).query)["code"][0]
    form, headers = token_request(code)
    with CaptureQueriesContext(connection) as token_queries:
        token = client.post("/token/", form, **headers)
    assert token.status_code == 200, token.content
    counts = [len(authorize_queries), len(token_queries)]

print(json.dumps({"session_key": session.session_key, "cookie": settings.SESSION_COOKIE_NAME, "client_id": CLIENT_ID,
                  "secret": SECRET, "redirect_uri": REDIRECT, "verifier": PKCE_VERIFIER, "challenge": PKCE_CHALLENGE,
                  "scope": SCOPE, "auth": AUTH, "pkce": PKCE, "queries": counts}))
