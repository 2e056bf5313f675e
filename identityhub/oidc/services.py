"""Registering OIDC clients: a DOT Application plus the hub's ClientProfile, in one place."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.db import transaction
from oauth2_provider.models import Application

from .hashers import check_secret_strength, generate_client_secret
from .models import ClientProfile


class ClientError(ValueError):
    """A client definition the hub refuses (bad redirect URI, weak secret, …)."""


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_redirect_uri(uri: str) -> str | None:
    """None when acceptable: absolute https, or http on loopback only; no fragment, no wildcard."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return f"redirect URI {uri!r} is not a valid URL"
    if parts.scheme not in {"https", "http"} or not parts.netloc:
        return f"redirect URI {uri!r} must be an absolute https URL"
    if parts.scheme == "http" and not is_loopback(host):
        return f"redirect URI {uri!r} must use https (http is allowed on loopback only)"
    if parts.fragment:
        return f"redirect URI {uri!r} must not carry a fragment"
    if "*" in uri:
        return f"redirect URI {uri!r} must not contain wildcards (matching is exact)"
    return None


def check_backchannel_logout_uri(uri: str) -> str | None:
    """None when acceptable: like a redirect URI (https, or http on loopback only; no fragment),
    at most 500 characters. The hub POSTs logout tokens there (OpenID Connect Back-Channel Logout)."""
    problem = check_redirect_uri(uri)
    if problem:
        return problem.replace("redirect URI", "back-channel logout URI", 1)
    if len(uri) > 500:
        return f"back-channel logout URI {uri[:40]!r}… is longer than 500 characters"
    return None


@transaction.atomic
def register_client(
    client_id: str,
    *,
    name: str = "",
    redirect_uris: Iterable[str],
    client_secret: str | None = None,
    public: bool = False,
    nas=None,
    households: Iterable = (),
    skip_consent: bool = False,
    post_logout_redirect_uris: Iterable[str] = (),
    extra_claims: dict | None = None,
    managed: bool = False,
    backchannel_logout_uri: str | None = None,
) -> tuple[Application, str | None]:
    """Create or update a client. Returns it and, when the hub generated one, the new secret.

    A confidential client without a given secret gets a generated 256-bit one on creation or when
    it was public until now (shown once by the caller); an existing secret is kept unless a new one
    is given. `backchannel_logout_uri` None keeps the stored one ("" removes it).
    """
    redirect_uris = list(dict.fromkeys(redirect_uris))
    if not redirect_uris:
        raise ClientError(f"client {client_id}: at least one redirect URI is required")
    for uri in [*redirect_uris, *post_logout_redirect_uris]:
        problem = check_redirect_uri(uri)
        if problem:
            raise ClientError(f"client {client_id}: {problem}")
    if backchannel_logout_uri:
        problem = check_backchannel_logout_uri(backchannel_logout_uri)
        if problem:
            raise ClientError(f"client {client_id}: {problem}")
    if client_secret is not None:
        if public:
            raise ClientError(f"client {client_id}: a public client has no secret")
        problem = check_secret_strength(client_secret)
        if problem:
            raise ClientError(f"client {client_id}: {problem}")

    application = Application.objects.filter(client_id=client_id).first()
    had_secret = application is not None and application.client_type == Application.CLIENT_CONFIDENTIAL
    generated = None
    if application is None:
        application = Application(client_id=client_id)
    if not public and client_secret is None and not had_secret:
        # New, or public until now: a public client's stored "secret" is the hash of "".
        client_secret = generated = generate_client_secret()
    application.name = name or client_id
    application.client_type = Application.CLIENT_PUBLIC if public else Application.CLIENT_CONFIDENTIAL
    application.authorization_grant_type = Application.GRANT_AUTHORIZATION_CODE
    application.algorithm = Application.RS256_ALGORITHM
    application.redirect_uris = " ".join(redirect_uris)
    application.post_logout_redirect_uris = " ".join(post_logout_redirect_uris)
    application.skip_authorization = skip_consent
    application.hash_client_secret = True
    if public:
        application.client_secret = ""
    elif client_secret is not None:
        application.client_secret = client_secret
    application.save()

    profile, _ = ClientProfile.objects.get_or_create(application=application)
    profile.nas = nas
    profile.extra_claims = extra_claims or {}
    profile.managed = managed
    if backchannel_logout_uri is not None:
        profile.backchannel_logout_uri = backchannel_logout_uri
    profile.save()
    profile.households.set(list(households))
    return application, generated


# --- the console's entry points: the same rules as the config file --------------------------------
def check_client_id(client_id: str) -> str | None:
    """None when acceptable: 1 to 100 characters without spaces (as `hub check` requires)."""
    if not client_id or len(client_id) > 100 or any(c.isspace() for c in client_id):
        return f"client id {client_id!r} must be 1 to 100 characters without spaces"
    return None


def check_client_households(nas, households: Iterable) -> str | None:
    """None when acceptable: a client without a NAS must name the households that may use it
    (with a NAS, none listed means the NAS's household) — the config's rule."""
    if nas is None and not list(households):
        return "choose the households who may use this app (required without a NAS)"
    return None


def create_client(client_id: str, **fields) -> tuple[Application, str | None]:
    """A new client (never an existing one: an id already taken is refused, not taken over).

    `fields` are register_client's; a confidential client gets a generated secret, returned once.
    """
    problem = check_client_id(client_id)
    if problem:
        raise ClientError(problem)
    if Application.objects.filter(client_id=client_id).exists():
        raise ClientError(f"client id {client_id!r} is already taken")
    problem = check_client_households(fields.get("nas"), fields.get("households", ()))
    if problem:
        raise ClientError(problem)
    return register_client(client_id, **fields)


def change_client(application: Application, **fields) -> tuple[Application, str | None]:
    """Change a console-made client. Its per-client claims and its secret are kept (a client
    turned confidential gets a generated secret, returned once); config-managed clients are refused."""
    profile = ClientProfile.objects.filter(application=application).first()
    if profile is not None and profile.managed:
        raise ClientError(f"client {application.client_id} is managed by the config file")
    problem = check_client_households(fields.get("nas"), fields.get("households", ()))
    if problem:
        raise ClientError(problem)
    fields.setdefault("extra_claims", profile.extra_claims if profile else {})
    return register_client(application.client_id, **fields)


@transaction.atomic
def rotate_client_secret(application: Application) -> str:
    """A new generated 256-bit secret for a confidential, console-made client; returned once, stored
    hashed. The old secret stops authenticating on the next request in every process (signals.py)."""
    application = Application.objects.select_for_update().get(pk=application.pk)
    if application.client_type != Application.CLIENT_CONFIDENTIAL:
        raise ClientError(f"client {application.client_id} is public: it has no secret")
    if ClientProfile.objects.filter(application=application, managed=True).exists():
        raise ClientError(f"client {application.client_id}: the config file declares its secret")
    secret = generate_client_secret()
    application.client_secret = secret
    application.hash_client_secret = True
    application.save(update_fields=["client_secret", "hash_client_secret", "updated"])
    return secret
