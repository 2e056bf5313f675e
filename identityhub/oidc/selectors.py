"""Hot-path reads for the provider: clients (cached per process) and grants."""

from __future__ import annotations

import threading
import uuid
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from oauth2_provider.models import Application, Grant

from accounts.selectors import Contact, household_admins

from . import fastpath, fastsql
from .models import CacheGeneration, ClientProfile

CLIENTS = "clients"
MAX_CACHED_CLIENTS = 1000


@cache
def _sql() -> dict[str, str]:
    # Table names come from model metadata; every value is a bound parameter.
    return {
        "application": f"SELECT * FROM {Application._meta.db_table} WHERE client_id = %s",  # noqa: S608
        "profile": f"SELECT * FROM {ClientProfile._meta.db_table} WHERE application_id = %s",  # noqa: S608
        "grant": f"SELECT * FROM {Grant._meta.db_table} WHERE code = %s",  # noqa: S608
        "user": f"SELECT * FROM {get_user_model()._meta.db_table} WHERE id = %s",  # noqa: S608
        "generation": f"SELECT token FROM {CacheGeneration._meta.db_table} WHERE name = %s",  # noqa: S608
    }


def load_grant(code: str) -> Grant | None:
    """The Grant for an authorization code with its user attached, in two plain queries
    (raw SQL: compiling the ORM equivalent costs more CPU than running it)."""
    if fastpath.enabled():  # one query (a join), no RawQuerySet column mapping
        return fastsql.get_joined(Grant, "code", code, "user")
    grant = next(iter(Grant.objects.raw(_sql()["grant"], [code])), None)
    if grant is not None:
        grant.user = next(iter(get_user_model().objects.raw(_sql()["user"], [grant.user_id])), None)
    return grant


# --- clients ---------------------------------------------------------------------------------
class _ClientCache:
    """Parsed clients of this process, valid while the "clients" generation token is unchanged."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token: object = None
        self.clients: dict[str, Application] = {}


_client_cache = _ClientCache()


def current_generation(name: str) -> uuid.UUID | None:
    with connection.cursor() as cursor:
        cursor.execute(_sql()["generation"], [name])
        row = cursor.fetchone()
    return row[0] if row else None


def bump_generation(name: str) -> None:
    """Invalidate every process's cache of `name` (inside the caller's transaction)."""
    CacheGeneration.objects.update_or_create(name=name, defaults={"token": uuid.uuid4()})


def _load_client_from_db(client_id: str) -> Application | None:
    application = next(iter(Application.objects.raw(_sql()["application"], [client_id])), None)
    if application is None:
        return None
    profile = next(iter(ClientProfile.objects.raw(_sql()["profile"], [application.pk])), None)
    application._state.fields_cache["profile"] = profile  # app.profile raises DoesNotExist when None
    return application


def load_client(client_id: str) -> Application | None:
    """The Application with its ClientProfile attached (or None).

    Runs at every authorization and token request. One tiny query checks the generation token;
    the two queries that load and parse the client only run after a change (any save or delete
    of an Application or ClientProfile, or of a profile's households, bumps the token — see
    identityhub.oidc.signals). The token is read before the rows, so a cached client is never
    older than the token it is filed under. Treat the returned object as read-only.
    """
    if not client_id or "\x00" in client_id:  # e.g. from a Basic auth header; PostgreSQL refuses NUL
        return None
    token = current_generation(CLIENTS)
    cache = _client_cache
    with cache.lock:
        if token != cache.token:
            cache.clients = {}
            cache.token = token
        cached = cache.clients.get(client_id)
    if cached is not None:
        return cached
    application = _load_client_from_db(client_id)
    if application is not None:
        with cache.lock:
            if cache.token == token and len(cache.clients) < MAX_CACHED_CLIENTS:
                cache.clients[client_id] = application
    return application


# --- who to ask about a client (refusal and error pages) ------------------------------------
def admins_to_ask(application: Application | None) -> list[Contact]:
    """The admins of the households that may use this client: its own households, or, when it
    lists none, its bound NAS's household (the access policy's rule). None for an unknown or
    unconfigured client."""
    if application is None:
        return []
    profile = ClientProfile.objects.filter(application_id=application.pk).select_related("nas").first()
    if profile is None:
        return []
    household_ids = list(profile.households.values_list("id", flat=True))
    if not household_ids and profile.nas_id:
        household_ids = [profile.nas.household_id]
    return household_admins(household_ids)
