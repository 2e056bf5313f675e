"""The accounts app's housekeeping job (registered with `identityhub.housekeeping` in apps.py).

Anonymous visitors leave rows behind: every `/login/<id>/` a session plus social-auth's state nonce
(`Nonce`) and, for OIDC upstreams, the ID-token nonce (`Association`); abandoned sign-ins never come
back to consume them. Django's `clearsessions` is not scheduled anywhere else, so this job runs its
logic (`SessionStore.clear_expired()`), and removes social-auth rows past any use: states and
nonces live 30 minutes (social-core's STATE_LIFETIME / NONCE_LIFETIME), `Code` and `Partial` (unused
by the hub's pipeline) a day.
"""

from __future__ import annotations

import time
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from social_django.models import Association, Code, Nonce, Partial

LEFTOVER_RETENTION = timedelta(days=1)


def clear_expired_sessions() -> int:
    """Django's `clearsessions`: the session engine's own `clear_expired()`; returns how many went
    (database-backed engines; a cache-only engine expires its sessions by itself)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    expired = 0
    if hasattr(store, "get_model_class"):
        expired = store.get_model_class().objects.filter(expire_date__lt=timezone.now()).count()
    try:
        store.clear_expired()
    except NotImplementedError:
        return 0
    return expired


def clear_sign_in_leftovers() -> int:
    now = int(time.time())
    cutoff = now - int(LEFTOVER_RETENTION.total_seconds())
    deleted = Nonce.objects.filter(timestamp__lt=cutoff).delete()[0]
    deleted += Association.objects.alias(ends=F("issued") + F("lifetime")).filter(ends__lt=now).delete()[0]
    since = timezone.now() - LEFTOVER_RETENTION
    deleted += Code.objects.filter(timestamp__lt=since).delete()[0]
    deleted += Partial.objects.filter(timestamp__lt=since).delete()[0]
    return deleted


def housekeeping() -> dict[str, int]:
    return {"expired_sessions": clear_expired_sessions(), "sign_in_leftovers": clear_sign_in_leftovers()}
