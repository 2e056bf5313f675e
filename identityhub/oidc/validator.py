"""The hub's OAuth2Validator: claims per client, policy at every issuance, and DOT's gaps closed.

What differs from DOT 3.4.1 (see ../shared/reference/stack-pitfalls.md):
- `sub` is the person's stable public id; claims come from identityhub.oidc.claims.
- Every code exchange, refresh and userinfo call re-runs the access policy.
- `prompt=none` works for a signed-in person (silent login/authorization implemented).
- A code sent without a verifier-less challenge cannot be "upgraded" with a code_verifier
  (PKCE downgrade), and a replayed code revokes what the first redemption issued.
- `auth_time` is the session's sign-in time (kept on the grant), not `user.last_login`.
- The grant is loaded once per token request, not once per oauthlib hook.
- ID tokens are signed with the process-cached key ring; id_token_hint verifies against every
  published key, so logout still works after a key rotation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from django.db import connection
from django.utils import timezone
from jwcrypto import jws, jwt
from oauth2_provider.bcp import bcp_compliant
from oauth2_provider.models import AccessToken, Grant, IDToken, RefreshToken
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors

from identityhub.audit import record_event

from . import fastpath, fastsql, keys
from .claims import CLAIM_SCOPES, SUPPORTED_CLAIMS, build_claims
from .context import current_http_request
from .models import ClientSession, Consent, RedeemedCode
from .policy import AccessDecision, check_access
from .selectors import load_client, load_grant

log = logging.getLogger(__name__)

AUTH_TIME_KEY = "_hub_auth_time"  # kept inside Grant.claims: DOT's Grant has no auth_time column
# Also in Grant.claims: the authorization request carried redirect_uri, so the exchange must too
# (RFC 6749 §4.1.3). The grant's redirect_uri column cannot tell: oauthlib stores the default there.
REDIRECT_URI_SENT_KEY = "_hub_redirect_uri_sent"
SID_KEY = "_hub_sid"  # the hub session (ID token `sid`, back-channel logout), kept the same way


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class HubOAuth2Validator(OAuth2Validator):
    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, **CLAIM_SCOPES}

    # --- clients: one query per request, profile and NAS included -------------------------------
    def _load_application(self, client_id, request):
        if request.client is not None and getattr(request.client, "client_id", None) == client_id:
            return request.client
        http_request = current_http_request.get()
        cache = getattr(http_request, "_hub_clients", None) if http_request is not None else None
        if cache is not None and client_id in cache:
            request.client = cache[client_id]
            return request.client
        try:
            client = load_client(client_id)
        except ValueError:  # e.g. a NUL byte in client_id (PostgreSQL)
            client = None
        request.client = client
        if cache is not None:
            cache[client_id] = client
        return client

    def _check_secret(self, provided_secret, stored_secret):
        # DOT asks this for confidential clients (and for anyone who sends a secret). An empty
        # secret never authenticates: a public client's stored value is the hash of "", and a
        # client turned confidential in the admin keeps that hash.
        if not provided_secret or not stored_secret:
            return False
        return super()._check_secret(provided_secret, stored_secret)

    # --- authorization endpoint -----------------------------------------------------------
    def validate_silent_login(self, request) -> bool:
        http_request = current_http_request.get()
        return bool(http_request is not None and http_request.user.is_authenticated)

    def validate_silent_authorization(self, request) -> bool:
        http_request = current_http_request.get()
        if http_request is None or request.client is None:
            return False
        return has_consent(http_request.user, request.client, request.scopes)

    def is_pkce_required(self, client_id, request) -> bool:
        """Required for public clients, optional for confidential ones (DSM sends none)."""
        client = request.client if request.client is not None else self._load_application(client_id, request)
        return client is None or client.client_type != client.CLIENT_CONFIDENTIAL

    def _create_authorization_code(self, request, code, expires=None):
        request.resource = []  # RFC 8707 `resource` is ignored: see _check_and_set_request_resource
        if getattr(request, "hub_redirect_uri_sent", False):
            request.claims = {**(request.claims or {}), REDIRECT_URI_SENT_KEY: True}
        auth_time = getattr(request, "hub_auth_time", None)
        if auth_time is not None:
            request.claims = {**(request.claims or {}), AUTH_TIME_KEY: auth_time}
        sid = getattr(request, "hub_sid", None)
        if sid:
            request.claims = {**(request.claims or {}), SID_KEY: sid}
        if not fastpath.enabled():
            return super()._create_authorization_code(request, code, expires)
        # DOT's _create_authorization_code (3.4.1), with one plain INSERT instead of objects.create().
        if request.code_challenge_method == "plain" and bcp_compliant(
            "COMPLIANT_BCP_RFC9700_PKCE_METHOD", 'The PKCE "plain" code_challenge_method'
        ):
            raise oauth2_errors.InvalidRequestError(
                description='Unsupported "plain" code_challenge_method; use "S256".', request=request)
        if not expires:
            expires = timezone.now() + timedelta(seconds=oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS)
        return fastsql.insert(Grant(
            application=request.client,
            user=request.user,
            code=code["code"],
            expires=expires,
            redirect_uri=request.redirect_uri,
            scope=" ".join(request.scopes),
            code_challenge=request.code_challenge or "",
            code_challenge_method=request.code_challenge_method or "",
            nonce=request.nonce or "",
            claims=json.dumps(request.claims or {}),
            resource=getattr(request, "resource", []),
        ))

    # --- token endpoint: the grant, loaded once ----------------------------------------------
    def _grant(self, request, code: str) -> Grant | None:
        cached = getattr(request, "_hub_grant", None)
        if cached is not None and cached.code == code:
            return cached
        grant = load_grant(code)
        request._hub_grant = grant
        return grant

    def get_authorization_code_scopes(self, client_id, code, redirect_uri, request):
        grant = self._grant(request, code)
        return grant.scope.split() if grant else []

    def get_authorization_code_nonce(self, client_id, code, redirect_uri, request):
        grant = self._grant(request, code)
        return (grant.nonce or None) if grant else None

    def get_code_challenge(self, code, request):
        grant = self._grant(request, code)
        return (grant.code_challenge or None) if grant else None

    def get_code_challenge_method(self, code, request):
        grant = self._grant(request, code)
        return (grant.code_challenge_method or None) if grant else None

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs):
        if getattr(request, "hub_redirect_uri_required", False) and request.using_default_redirect_uri:
            # oauthlib fills in the only registered URI when none is sent. Like every failed
            # exchange, this one leaves the code redeemable (oauthlib deletes it only on success).
            raise oauth2_errors.InvalidRequestError(
                description="redirect_uri is required: the authorization request carried one", request=request)
        grant = self._grant(request, code)
        return bool(grant and grant.application_id == client.pk and grant.redirect_uri_allowed(redirect_uri))

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        grant = self._grant(request, code)
        if grant is None or grant.application_id != client.pk:
            self._revoke_replayed_code(code, client)
            return False
        if grant.is_expired():
            return False
        if not grant.code_challenge and request.code_verifier:
            # oauthlib ignores a verifier for a code issued without a challenge: that is a
            # PKCE downgrade (the challenge was stripped from the authorization request).
            log.info("refused a code_verifier for a code issued without PKCE (client %s)", client.client_id)
            return False
        request.scopes = grant.scope.split(" ")
        request.user = grant.user
        if grant.nonce:
            request.nonce = grant.nonce
        claims = json.loads(grant.claims) if grant.claims else {}
        request.hub_auth_time = claims.pop(AUTH_TIME_KEY, None)
        request.hub_redirect_uri_required = bool(claims.pop(REDIRECT_URI_SENT_KEY, False))
        request.hub_sid = claims.pop(SID_KEY, None)
        if claims:
            request.claims = claims
        return self._authorize_person(request, grant.user, client)

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        grant = self._grant(request, code)
        if grant is not None and not getattr(request, "_hub_grant_deleted", False):
            if fastpath.enabled():
                fastsql.delete_by_pk(Grant, grant.pk)  # nothing references a Grant; no signal receivers
            else:
                grant.delete()

    def _revoke_replayed_code(self, code: str, client) -> None:
        redeemed = RedeemedCode.objects.filter(code_digest=_digest(code), application=client).first()
        if redeemed is None:
            return
        revoke_redeemed(redeemed)
        record_event("token_revoked", reason="code_reuse", client_id=client.client_id)

    # --- token issuance -------------------------------------------------------------------------
    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        # DOT re-parses and re-verifies the ID token it just signed to find its row; the row is
        # already on the request (finalize_id_token), so use it.
        access_token = AccessToken(
            user=request.user,
            scope=token["scope"],
            expires=expires,
            id_token=getattr(request, "id_token", None) if token.get("id_token") else None,
            application=request.client,
            source_refresh_token=source_refresh_token,
            resource=getattr(request, "resource", []),
        )
        self._set_token_value(access_token, token["access_token"])
        fastsql.insert(access_token) if fastpath.enabled() else access_token.save()
        request._hub_access_token = access_token
        return access_token

    def _check_and_set_request_resource(self, request):
        """RFC 8707 resource indicators: the hub has none — its access tokens are for its own
        userinfo, and no resource server can introspect them — so a `resource` parameter is ignored
        (RFC 6749 §3.1: unrecognized parameters are), at /authorize/ (where DOT stored the string in
        Grant.resource, a 500) and at /token/, rather than answered `invalid_target`: client libraries
        send it routinely, and refusing would lock them out for no protection. A refresh keeps what
        an older token was restricted to (never widened)."""
        instance = getattr(request, "refresh_token_instance", None) if request.grant_type == "refresh_token" else None
        request.resource = list(instance.resource or []) if instance is not None else []

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token):
        if not fastpath.enabled():
            refresh_token = super()._create_refresh_token(
                request, refresh_token_code, access_token, previous_refresh_token)
        else:  # DOT's (3.4.1), with one plain INSERT
            refresh_token = RefreshToken(
                user=request.user,
                application=request.client,
                access_token=access_token,
                token_family=previous_refresh_token.token_family if previous_refresh_token else uuid.uuid4(),
                resource=getattr(request, "resource", []),
            )
            self._set_token_value(refresh_token, refresh_token_code)
            fastsql.insert(refresh_token)
        request._hub_refresh_token = refresh_token
        return refresh_token

    def _save_id_token(self, jti, request, expires, *args, **kwargs):
        if not fastpath.enabled():
            return super()._save_id_token(jti, request, expires, *args, **kwargs)
        return fastsql.insert(IDToken(  # DOT's (3.4.1), with one plain INSERT
            user=request.user, scope=request.scope or " ".join(request.scopes), expires=expires, jti=jti,
            application=request.client,
        ))

    def save_bearer_token(self, token, request, *args, **kwargs):
        if connection.in_atomic_block:  # the token view already runs in one transaction
            self._save_bearer_token(token, request, *args, **kwargs)
        else:
            super().save_bearer_token(token, request, *args, **kwargs)
        code = request.code if request.grant_type == "authorization_code" else None
        access_token = getattr(request, "_hub_access_token", None)
        if code and access_token is not None:
            refresh_token = getattr(request, "_hub_refresh_token", None)
            redeemed = RedeemedCode(
                code_digest=_digest(code),
                application=request.client,
                access_token_checksum=access_token.token_checksum,
                token_family=refresh_token.token_family if refresh_token else None,
                auth_time=getattr(request, "hub_auth_time", None),
                sid=getattr(request, "hub_sid", None) or "",
            )
            session = None
            if getattr(request, "hub_sid", None):
                # Which clients got tokens in which hub session (back-channel logout): one upsert.
                session = ClientSession(user=request.user, application=request.client, sid=request.hub_sid)
            if fastpath.enabled():
                # With the grant's delete (oauthlib's invalidate_authorization_code, which comes next
                # in the same transaction): one round trip on PostgreSQL.
                statements = [fastsql.insert_statement(redeemed)]
                if session is not None:
                    statements.append(fastsql.upsert_statement(session, unique=("application", "sid"),
                                                               update=("last_seen",)))
                grant = getattr(request, "_hub_grant", None)
                if grant is not None and grant.code == code:
                    statements.append(fastsql.delete_statement(Grant, grant.pk))
                    request._hub_grant_deleted = True
                fastsql.execute_batch(statements)
            else:
                redeemed.save()
                if session is not None:
                    ClientSession.objects.bulk_create(
                        [session], update_conflicts=True, unique_fields=["application", "sid"],
                        update_fields=["last_seen"],
                    )
        decision = getattr(request, "hub_access", None)
        record_event("token_issued", user=request.user, client_id=request.client.client_id,
                     nas_id=decision.nas_id if decision else "", grant=request.grant_type)

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        family = request.refresh_token_instance.token_family
        request.hub_auth_time, request.hub_sid = (
            RedeemedCode.objects.filter(token_family=family).values_list("auth_time", "sid").first()
            if family else None
        ) or (None, None)
        return self._authorize_person(request, request.user, client)

    def _authorize_person(self, request, user, client) -> bool:
        decision = check_access(user, client)
        if not decision.allowed:
            record_event("refusal", reason=decision.refusal.reason, user=user, client_id=client.client_id,
                         nas_id=decision.nas_id, at="token")
            return False
        request.hub_access = decision
        return True

    # --- userinfo / protected resources -------------------------------------------------------
    def validate_bearer_token(self, token, scopes, request):
        if oauth2_settings.COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT and _token_in_query(request):
            # RFC 9700 §4.3.2: URLs end up in logs and Referer headers. DOT only checks this in
            # verify_request; its userinfo view reaches here through oauthlib without that gate.
            request.oauth2_error = {"error": "invalid_request",
                                    "error_description": "send the access token in the Authorization header"}
            return False
        if not super().validate_bearer_token(token, scopes, request):
            return False
        if request.user is None:
            return True  # client-credentials token: no person to check
        if not self._authorize_person(request, request.user, request.client):
            request.oauth2_error = {"error": "invalid_token", "error_description": "access has been withdrawn"}
            return False
        return True

    # --- claims and ID tokens ---------------------------------------------------------------------
    def _decision(self, request) -> AccessDecision:
        decision = getattr(request, "hub_access", None)
        if decision is None:  # every issuing path sets it; compute rather than release unchecked
            decision = check_access(request.user, request.client)
            if not decision.allowed:
                raise PermissionError(decision.refusal.reason)
            request.hub_access = decision
        return decision

    def get_oidc_claims(self, token, token_handler, request):
        return build_claims(request.user, self._decision(request), request.scopes, request.client)

    def get_claim_dict(self, request):
        return self.get_oidc_claims(None, None, request)

    def get_discovery_claims(self, request):
        return SUPPORTED_CLAIMS

    def get_id_token_dictionary(self, token, token_handler, request):
        claims, expiration_time = super().get_id_token_dictionary(token, token_handler, request)
        auth_time = getattr(request, "hub_auth_time", None)
        if auth_time:
            claims["auth_time"] = int(auth_time)
        sid = getattr(request, "hub_sid", None)
        if sid:
            claims["sid"] = sid
        return claims, expiration_time

    def finalize_id_token(self, id_token, token, token_handler, request):
        claims, expiration_time = self.get_id_token_dictionary(token, token_handler, request)
        id_token.update(**claims)
        if "nonce" not in id_token and request.nonce:  # oauthlib bug #746
            id_token["nonce"] = request.nonce
        ring = keys.keyring()
        if fastpath.enabled():
            serialized = ring.sign_jwt(id_token)  # the same bytes as jwcrypto's, without its copies
        else:
            signed = jwt.JWT(header={"typ": "JWT", "alg": "RS256", "kid": ring.kid}, claims=id_token)
            signed.make_signed_token(ring.active)
            serialized = signed.serialize()
        request.id_token = request.access_token = self._save_id_token(id_token["jti"], request, expiration_time)
        return serialized

    def _get_key_for_token(self, token):
        # A malformed token raises InvalidJWSObject, which DOT's logout treats as "no valid hint";
        # without this parse, jwt.JWT raised a bare ValueError later (a 500 at /logout/).
        jws.JWS().deserialize(token)
        return keys.keyring().published


def _token_in_query(request) -> bool:
    """True when the request's URL query carries an `access_token` parameter."""
    query = urlsplit(request.uri or "").query
    return "access_token" in parse_qs(query, keep_blank_values=True)


def has_consent(user, application, scopes) -> bool:
    if application.skip_authorization:
        return True
    consent = Consent.objects.filter(user=user, application=application).first()
    return consent is not None and consent.covers(list(scopes))


def revoke_redeemed(redeemed: RedeemedCode) -> None:
    """Revoke every token that descends from a redeemed code (access, refresh family, rotations)."""
    AccessToken.objects.filter(token_checksum=redeemed.access_token_checksum).delete()
    if redeemed.token_family:
        family = RefreshToken.objects.filter(token_family=redeemed.token_family)
        AccessToken.objects.filter(source_refresh_token__in=family).delete()
        AccessToken.objects.filter(refresh_token__in=family).delete()
        family.filter(revoked__isnull=True).update(revoked=timezone.now())


def clear_redeemed_codes(older_than: timedelta) -> int:
    cutoff = datetime.now(UTC) - older_than
    deleted, _ = RedeemedCode.objects.filter(redeemed__lt=cutoff).delete()
    return deleted
