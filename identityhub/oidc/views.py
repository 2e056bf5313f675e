"""The provider's endpoints. DOT does the protocol; this view adds the hub's decisions.

The authorization view wraps DOT's: it enforces `prompt=login` and `max_age` with the session's
sign-in time, answers `prompt=none` without DOT's 500, checks the household / NAS-account policy
before any code is issued, and remembers consent.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from jwcrypto import jwt
from jwcrypto.common import JWException
from oauth2_provider import views as dot
from oauth2_provider.exceptions import (
    FatalClientError,
    InvalidOIDCClientError,
    InvalidOIDCRedirectURIError,
    OAuthToolkitError,
)
from oauth2_provider.models import Application
from oauth2_provider.oauth2_backends import _add_iss_to_redirect
from oauth2_provider.scopes import get_scopes_backend
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import AuthorizationView
from oauth2_provider.views.mixins import OAuthLibMixin
from oauth2_provider.views.oidc import _validate_claims
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors

from accounts.hub_session import session_sid
from accounts.models import normalize_email
from accounts.refusals import Refused
from accounts.views import AUTH_TIME_SESSION_KEY, login_url_with, parse_max_age, reauth_params, render_refusal
from identityhub.audit import record_event
from identityhub.ratelimit import limit_failed_client_authentication

from . import backchannel, keys
from .context import current_http_request
from .models import Consent, RedeemedCode
from .policy import check_access
from .selectors import admins_to_ask, load_client
from .services import check_redirect_uri
from .validator import _digest, has_consent, revoke_redeemed

REAUTH_PARAMS = ("prompt", "max_age")
# Re-authentications asked for and not completed yet: {digest of the returning URL: when asked}.
REAUTH_SESSION_KEY = "hub_reauth_pending"
REAUTH_PENDING_MAX = 5
# oauthlib's fatal errors (never redirected) that mean "this client_id is not known here".
UNKNOWN_CLIENT_ERRORS = (oauth2_errors.InvalidClientIdError, oauth2_errors.MissingClientIdError)


def allow_form_redirect(response: HttpResponse, uri: str | None) -> HttpResponse:
    """Let this page's form redirect to `uri`'s origin (CSP form-action also covers the redirect
    after a POST in Chromium). Only for a URI the request has already validated for its client."""
    parts = urlsplit(uri or "")
    if parts.scheme in {"http", "https"} and parts.netloc:
        response._csp_update = {"form-action": [f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"]}
    return response


@method_decorator(never_cache, name="dispatch")
class HubAuthorizationView(AuthorizationView):
    template_name = "oidc/authorize.html"

    def dispatch(self, request, *args, **kwargs):
        request._hub_clients = {}  # per-request client cache (validator._load_application)
        token = current_http_request.set(request)
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            current_http_request.reset(token)

    # --- GET: the authorization request ---------------------------------------------------------
    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        prompt = set(request.GET.get("prompt", "").split())
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            # An unknown client or unregistered redirect URI renders an error page; oauthlib only
            # redirects errors to a redirect URI it has matched exactly.
            return self.error_response(error, application=None)
        application: Application = credentials["request"].client

        try:
            hinted_other = self._hint_names_someone_else(request)
        except ValueError:  # not an ID token signed by this hub's published keys
            return self._error_redirect(credentials, application, "invalid_request")
        needs_fresh_login = self._needs_fresh_login(request, prompt)  # first: it notes a completed re-auth
        if needs_fresh_login or (hinted_other and not getattr(request, "_hub_reauth_done", False)):
            if "none" in prompt:
                return self._error_redirect(credentials, application, "login_required")
            return self._reauthenticate(request, ask_again=bool(hinted_other))
        if hinted_other == "id_token_hint":
            # Signed in again and still not the person the app named: an error (OIDC Core 3.1.2.1),
            # not another round. A login_hint is only a hint: whoever signed in goes on.
            return self._error_redirect(credentials, application, "login_required")

        decision = check_access(request.user, application, allow_quick_sync=True)
        if not decision.allowed:
            record_event("refusal", reason=decision.refusal.reason, user=request.user,
                         client_id=application.client_id, nas_id=decision.nas_id, at="authorize")
            if "none" in prompt:
                # `access_denied` only: the reason names the person (their email, their NAS) and any
                # registered app could ask; it stays on the hub's page and in the audit trail.
                return self._error_redirect(credentials, application, "access_denied")
            # Offer to sign in as someone else and come back to this same request.
            another = login_url_with(self._without_reauth_params(request), prompt="login")
            refused = Refused(reason=decision.refusal.reason, email=request.user.email, user=request.user,
                              client_id=application.client_id, next_url=request.get_full_path())
            return render_refusal(request, message=decision.refusal.message, advice=decision.refusal.advice,
                                  retry=another, retry_label=_("Use another account"),
                                  contacts=admins_to_ask(application), language_next=request.get_full_path(),
                                  refused=refused)

        # prompt=consent asks again, except for trusted clients (DSM), whose consent is implied.
        ask_again = "consent" in prompt and not application.skip_authorization
        if not ask_again and has_consent(request.user, application, scopes):
            return self._approve(request, scopes, credentials, application)

        all_scopes = get_scopes_backend().get_all_scopes()
        self.oauth2_data = {
            **{key: credentials.get(key) for key in ("client_id", "redirect_uri", "response_type", "state",
                                                       "code_challenge", "code_challenge_method", "nonce")},
            "scopes": scopes,
            "scopes_descriptions": [all_scopes[scope] for scope in scopes],
            "application": application,
        }
        form = self.get_form(self.get_form_class())
        response = self.render_to_response(self.get_context_data(form=form, **self.oauth2_data))
        return allow_form_redirect(response, credentials.get("redirect_uri"))

    def _approve(self, request, scopes, credentials, application) -> HttpResponse:
        try:
            if credentials.get("response_type") == "code":
                uri = self._issue_code(request, scopes, credentials)
            else:  # not the code flow: DOT's way, unchanged (it validates the request again)
                credentials = {k: v for k, v in credentials.items() if k != "request"}
                uri, _headers, _body, _status = self.create_authorization_response(
                    request=request, scopes=" ".join(scopes), credentials=credentials, allow=True
                )
        except OAuthToolkitError as error:
            return self.error_response(error, application)
        return self.redirect(uri, application)

    def _issue_code(self, request, scopes, credentials) -> str:
        """The code for the request `get` has just validated, on oauthlib's own validated Request.

        DOT's create_authorization_response builds a second Request and oauthlib's grant runs the
        whole validation again before issuing (authorization_code.py): the same checks on the same
        query, with nothing changed in between. This does what follows that second validation —
        create_authorization_code, the code modifiers, save_authorization_code (the hub's
        `_create_authorization_code`: PKCE method, claims, auth_time, sid), the response — and adds
        `iss` as DOT does. The consent form's POST, whose fields come back from the browser, still
        goes through DOT (form_valid) and is validated in full."""
        oauth_request = credentials["request"]
        oauth_request.scopes = list(scopes)
        oauth_request.user = request.user
        for key, value in self._hub_credentials(request).items():
            setattr(oauth_request, key, value)
        server = self.get_oauthlib_core().server
        dispatcher = server.response_types["code"]
        grant_type = dispatcher._handler_for_request(oauth_request)
        try:
            grant = grant_type.create_authorization_code(oauth_request)
            for modifier in grant_type._code_modifiers:
                grant = modifier(grant, server.default_token_type, oauth_request)
            if "access_token" in grant:
                grant_type.request_validator.save_token(grant, oauth_request)
            grant_type.request_validator.save_authorization_code(oauth_request.client_id, grant, oauth_request)
            headers, _body, _status = grant_type.prepare_authorization_response(oauth_request, grant, {}, None, 302)
        except oauth2_errors.FatalClientError as error:
            raise FatalClientError(error=error, redirect_uri=credentials["redirect_uri"]) from error
        except oauth2_errors.OAuth2Error as error:
            raise OAuthToolkitError(error=error, redirect_uri=credentials["redirect_uri"]) from error
        uri = headers["Location"]
        if oauth2_settings.COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS:
            uri = _add_iss_to_redirect(uri, oauth2_settings.oauth2_authorization_server_issuer(request))
        return uri

    # --- POST: the consent form -----------------------------------------------------------------
    def form_valid(self, form):
        application = Application.objects.filter(client_id=form.cleaned_data["client_id"]).first()
        if application is None:  # DOT's form_valid would answer DoesNotExist with a 500
            return self.error_response(FatalClientError(error=oauth2_errors.InvalidClientIdError()), None)
        if form.cleaned_data.get("allow"):
            decision = check_access(self.request.user, application)
            if not decision.allowed:
                return render_refusal(self.request, message=decision.refusal.message,
                                      advice=decision.refusal.advice, contacts=admins_to_ask(application))
            Consent.objects.update_or_create(
                user=self.request.user, application=application,
                defaults={"scopes": form.cleaned_data.get("scope", "")},
            )
        return super().form_valid(form)

    def create_authorization_response(self, request, scopes, credentials, allow):
        credentials.update(self._hub_credentials(request))
        return super().create_authorization_response(request, scopes, credentials, allow)

    @staticmethod
    def _hub_credentials(request) -> dict:
        return {
            # Whether the client sent redirect_uri (then the exchange must send it too, RFC 6749 §4.1.3).
            # The consent form posts back to the authorization URL, so GET is the client's request.
            "hub_redirect_uri_sent": "redirect_uri" in (request.GET or request.POST),
            # The session's sign-in time travels with the grant to become the ID token's auth_time.
            "hub_auth_time": request.session.get(AUTH_TIME_SESSION_KEY),
            # And the hub session's id: the ID token's `sid`, and what back-channel logout signs out.
            "hub_sid": session_sid(request.session),
        }

    # --- the error page -------------------------------------------------------------------------
    def error_response(self, error, application, **kwargs):
        """DOT redirects an error when oauthlib matched the redirect URI; a fatal one (unknown
        client, redirect URI not registered) renders the page instead. That page says which
        client_id and redirect_uri were sent, and the attempt goes into the audit trail."""
        if isinstance(error, FatalClientError):
            params = self.request.POST if self.request.method == "POST" else self.request.GET
            client_id = params.get("client_id", "")
            redirect_uri = params.get("redirect_uri", "")
            known = load_client(client_id) if client_id else None
            oauthlib_error = error.oauthlib_error
            record_event("refusal", reason="invalid_request", user=_person(self.request),
                         client_id=client_id[:100], redirect_uri=redirect_uri[:500],
                         error=oauthlib_error.error, description=(oauthlib_error.description or "")[:300])
            kwargs.update(
                sent_client_id=client_id, sent_redirect_uri=redirect_uri, known_client=known,
                unknown_client=isinstance(oauthlib_error, UNKNOWN_CLIENT_ERRORS) or known is None,
                contacts=admins_to_ask(known),
            )
        return super().error_response(error, application, **kwargs)

    # --- helpers ------------------------------------------------------------------------------
    def redirect(self, redirect_to, application):
        """Every redirect back to the client carries `iss` (RFC 9207 §2: error responses too, and
        discovery says so): DOT adds it to successful responses only, not to its error redirects
        (invalid_scope, consent_required, access_denied from the form, anonymous prompt=none)."""
        issuer = oauth2_settings.oauth2_authorization_server_issuer(self.request)
        return super().redirect(_add_iss_to_redirect(redirect_to, issuer), application)

    @staticmethod
    def _hint_names_someone_else(request: HttpRequest) -> str | None:
        """Which hint names another person than the signed-in one: "id_token_hint" (its `sub`, a
        public id), "login_hint" (an email), or None. A login_hint that is no email names no one here
        (it is still passed on to the upstream). Raises ValueError for an id_token_hint that is not
        this hub's (see `verified_hint_claims`)."""
        user = request.user
        id_token_hint = request.GET.get("id_token_hint", "")
        if id_token_hint and verified_hint_claims(request, id_token_hint).get("sub") != str(user.public_id):
            return "id_token_hint"
        login_hint = request.GET.get("login_hint", "")
        if "@" in login_hint and normalize_email(login_hint) != normalize_email(user.email):
            return "login_hint"
        return None

    def _needs_fresh_login(self, request: HttpRequest, prompt: set[str]) -> bool:
        """prompt=login, a max_age older than the session's sign-in, or a re-authentication this very
        request asked for that has not completed: the URL it comes back to has no prompt/max_age (no
        loop), so the session remembers it (`_reauthenticate`) until a sign-in newer than the ask."""
        if "login" in prompt:
            return True
        pending = request.session.get(REAUTH_SESSION_KEY) or {}
        key = self._reauth_key(request)
        if key in pending:
            if (request.session.get(AUTH_TIME_SESSION_KEY) or 0) < pending[key]:
                return True  # came back without signing in again (abandoned, or the back button)
            request.session[REAUTH_SESSION_KEY] = {k: v for k, v in pending.items() if k != key}  # done
            request._hub_reauth_done = True
        max_age = parse_max_age(request.GET.get("max_age", ""))
        if max_age is not None:
            auth_time = request.session.get(AUTH_TIME_SESSION_KEY) or 0
            return time.time() - auth_time > max_age
        return False

    def _reauthenticate(self, request: HttpRequest, ask_again: bool = False) -> HttpResponse:
        """Send the person to sign in again WITHOUT ending their session: signing out here let any web
        page sign a member out with one link (`<img src=…/authorize/?…&prompt=login>`). The session
        remembers that this request awaits a sign-in newer than now; `accounts.views.complete` sets
        that newer `hub_auth_time` (and rotates the session). Abandoned, nothing changed."""
        now = int(time.time())
        pending = {**(request.session.get(REAUTH_SESSION_KEY) or {}), self._reauth_key(request): now}
        request.session[REAUTH_SESSION_KEY] = dict(sorted(pending.items(), key=lambda kv: kv[1])[-REAUTH_PENDING_MAX:])
        passed_on = reauth_params(request)  # prompt=login, max_age, login_hint
        if ask_again or not {"prompt", "max_age"} & set(passed_on):
            # A hint for someone else, or asked again for a pending request: the upstream must ask too.
            passed_on["prompt"] = "login"
        return redirect(login_url_with(self._without_reauth_params(request), **passed_on))

    @classmethod
    def _reauth_key(cls, request: HttpRequest) -> str:
        return hashlib.sha256(cls._without_reauth_params(request).encode()).hexdigest()[:32]

    @staticmethod
    def _without_reauth_params(request: HttpRequest) -> str:
        """The authorization URL to return to after signing in again, minus prompt/max_age (no loop)."""
        query = [(k, v) for k, v in parse_qsl(urlsplit(request.get_full_path()).query) if k not in REAUTH_PARAMS]
        return f"{request.path}?{urlencode(query)}"

    def _error_redirect(self, credentials, application, error: str) -> HttpResponse:
        params = {"error": error}
        if credentials.get("state"):
            params["state"] = credentials["state"]
        redirect_uri = credentials["redirect_uri"]
        separator = "&" if "?" in redirect_uri else "?"
        return self.redirect(f"{redirect_uri}{separator}{urlencode(params)}", application)


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
@method_decorator(sensitive_post_parameters("client_secret", "code_verifier", "refresh_token", "code"), name="dispatch")
class TokenView(OAuthLibMixin, View):
    """DOT's token endpoint in one database transaction (one commit per exchange, not six), without
    DOT's extra read-back of the token it just wrote (its `app_authorized` signal is unused here)."""

    @classmethod
    def get_server_class(cls):
        return _code_and_refresh_only(super().get_server_class())

    @limit_failed_client_authentication  # 429 after too many 401s per address / client_id (issue 9 item 9)
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        request._hub_clients = {}
        token = current_http_request.set(request)
        try:
            with transaction.atomic():
                _url, headers, body, status = self.create_token_response(request)
        except IntegrityError:
            # Two redemptions of one code raced past the grant read (PostgreSQL); the other one
            # committed its RedeemedCode first (code_digest is unique). This one is a replay.
            redeemed = RedeemedCode.objects.filter(code_digest=_digest(request.POST.get("code", ""))).first()
            if redeemed is None:
                raise
            revoke_redeemed(redeemed)  # this request had authenticated as the code's client
            record_event("token_revoked", reason="code_reuse", client_id=redeemed.application.client_id)
            return JsonResponse({"error": "invalid_grant"}, status=400, headers={"Cache-Control": "no-store"})
        finally:
            current_http_request.reset(token)
        response = HttpResponse(content=body, status=status)
        for name, value in headers.items():
            response[name] = value
        if status == 401:  # invalid_client: oauthlib challenges with Bearer, a resource server's scheme
            response["WWW-Authenticate"] = f'Basic realm="{oauth2_settings.oidc_issuer(request)}"'  # RFC 6749 §5.2
        return response


def verified_hint_claims(request: HttpRequest, token: str) -> dict:
    """The claims of an id_token_hint, verified as /logout/ verifies its hints: against every key
    the hub publishes (`HubOAuth2Validator._get_key_for_token`, so rotation keeps hints working) and
    issued by this hub (DOT's `_validate_claims`). Expired is fine — a hint names a past session, and
    RPs send the last ID token they hold. Anything else raises ValueError (→ `invalid_request`)."""
    validator = oauth2_settings.OAUTH2_VALIDATOR_CLASS()
    try:
        key = validator._get_key_for_token(token)
        claims = json.loads(jwt.JWT(jwt=token, key=key, algs=["RS256"], check_claims={}).claims)
    except (JWException, ValueError, TypeError, KeyError) as error:
        raise ValueError("not an ID token of this hub") from error
    if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str) or not _validate_claims(request, claims):
        raise ValueError("not an ID token of this hub")
    return claims


GRANT_TYPES = ("authorization_code", "refresh_token")  # what discovery announces, and all /token/ serves


@functools.cache
def _code_and_refresh_only(server_class):
    """oauthlib's server without the password, client-credentials and device-code grants: those
    answered `invalid_grant`, `unauthorized_client` or a 500 (DOT 3.4.1's device grant looks up a
    DeviceGrant that does not exist); oauthlib answers any grant type it lacks `unsupported_grant_type`."""

    class HubTokenServer(server_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._grant_types = {name: grant for name, grant in self._grant_types.items() if name in GRANT_TYPES}

    return HubTokenServer


def _person(request: HttpRequest):
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


class LogoutView(dot.RPInitiatedLogoutView):
    """DOT's RP-initiated logout; an unknown client_id is a 400, not DOT's uncaught DoesNotExist.

    Without a (registered) post_logout_redirect_uri it lands on the hub's signed-out page, not on
    DOT's "/" (which sent people to /account/ → /login/ → the upstream: signed straight back in)."""

    template_name = "oidc/logout_confirm.html"

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        if response.status_code == 200:  # the confirmation form: it may redirect to the client
            allow_form_redirect(response, self.oidc_data.get("post_logout_redirect_uri"))
        return response

    def do_logout(self, application=None, post_logout_redirect_uri=None, state=None, token_user=None):
        # The hub session that ends (read before DOT flushes it): its apps get logout tokens. Without
        # a signed-in session, the sid of the id_token_hint DOT has just verified.
        user = token_user or self.request.user
        if self.request.user.is_authenticated and self.request.user == user:
            sid = session_sid(self.request.session, create=False)
        else:
            sid = _hint_sid(self.request)
        response = super().do_logout(application, post_logout_redirect_uri, state, token_user)
        if user.is_authenticated:
            ended = backchannel.sign_out_everywhere(user, sid=sid, reason="rp_logout") if sid else 0
            if not ended and application is not None:
                # No known session behind it (tokens from before sids): that client's tokens, as DOT did.
                backchannel.sign_out_everywhere(user, applications=[application], reason="rp_logout")
        if not post_logout_redirect_uri:
            return redirect("accounts:logged-out")
        return response

    def get_request_application(self, id_token, client_id):
        if client_id:
            try:
                application = Application.objects.filter(client_id=client_id).first()
            except ValueError:  # a NUL byte (PostgreSQL)
                application = None
            if application is None:
                raise InvalidOIDCClientError()
            return application
        return super().get_request_application(id_token, client_id)

    def validate_post_logout_redirect_uri(self, application, post_logout_redirect_uri):
        """The config's rule (`check_redirect_uri`, as `hub check` and the console apply it): https,
        or http on loopback only — for any client type (RFC 8252: native apps are public and listen on
        loopback). DOT's strict mode refused http for every public client, also on loopback."""
        if not post_logout_redirect_uri:
            return
        if not application:
            raise InvalidOIDCClientError()
        problem = check_redirect_uri(post_logout_redirect_uri)
        if problem:
            raise InvalidOIDCRedirectURIError(problem)
        if not application.post_logout_redirect_uri_allowed(post_logout_redirect_uri):
            raise InvalidOIDCRedirectURIError("This client does not have this redirect uri registered.")


def _hint_sid(request: HttpRequest) -> str | None:
    """The `sid` of the request's id_token_hint (only called once DOT has verified the hint)."""
    hint = request.POST.get("id_token_hint") or request.GET.get("id_token_hint") or ""
    try:
        payload = json.loads(base64.urlsafe_b64decode(hint.split(".")[1] + "=="))
    except (IndexError, ValueError):
        return None
    sid = payload.get("sid") if isinstance(payload, dict) else None
    return sid if isinstance(sid, str) and sid else None


class DiscoveryView(dot.ConnectDiscoveryInfoView):
    """DOT's document, narrowed to what the hub really does (RS256 only; the prompts it honours)."""

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        document = json.loads(response.content)
        document["id_token_signing_alg_values_supported"] = ["RS256"]
        document["prompt_values_supported"] = ["none", "login", "consent"]
        document["grant_types_supported"] = ["authorization_code", "refresh_token"]
        document["response_types_supported"] = ["code"]
        document["claims_parameter_supported"] = False
        # OpenID Connect Back-Channel Logout 1.0: logout tokens carry sub and sid (identityhub.oidc.backchannel).
        document["backchannel_logout_supported"] = True
        document["backchannel_logout_session_supported"] = True
        # RFC 7009 / RFC 8414: /revoke/ authenticates clients exactly as /token/ does (DOT's
        # authenticate_client: Basic or form body). Client libraries refuse to revoke without it.
        document["revocation_endpoint"] = self._get_endpoint_url(request, "revoke-token", required=True)
        document["revocation_endpoint_auth_methods_supported"] = document["token_endpoint_auth_methods_supported"]
        patched = JsonResponse(document)
        patched["Access-Control-Allow-Origin"] = "*"
        return patched


@method_decorator(login_not_required, name="dispatch")
class JwksView(View):
    """Active and retiring public keys, each with its `kid`."""

    def get(self, request: HttpRequest) -> HttpResponse:
        response = JsonResponse(keys.keyring().public_jwks())
        response["Access-Control-Allow-Origin"] = "*"
        response["Cache-Control"] = "public, max-age=300"
        return response
