"""The hub session's identifier and the "sign out" hook (OpenID Connect Back-Channel Logout).

`sid` names one hub session of a person: a random value kept in the Django session (never the
session key itself, which changes at every sign-in and must stay secret). It is given to each app
in its ID token; the provider records which apps got tokens in which session, and signs them out
when the session ends.

accounts imports no provider module: signing the apps out is the provider's, which connects a
receiver to `sign_out_requested` (identityhub/oidc/apps.py). `request_sign_out` is how the
family's pages and the console ask for it.
"""

from __future__ import annotations

import secrets

from django.dispatch import Signal

SID_SESSION_KEY = "hub_sid"

# Sent with user=, sid= (None: every session of the person) and reason=; receivers return how many
# app sessions they ended.
sign_out_requested = Signal()


def new_sid() -> str:
    return secrets.token_urlsafe(24)


def session_sid(session, *, create: bool = True) -> str | None:
    """The session's `sid`, created when missing (sessions from before sids, `force_login`)."""
    sid = session.get(SID_SESSION_KEY)
    if not sid and create:
        sid = session[SID_SESSION_KEY] = new_sid()
    return sid or None


def request_sign_out(user, *, sid: str | None = None, reason: str) -> int:
    """Sign the person's apps out: those of one hub session (`sid`) or, without one, all of them.
    Returns the number of app sessions ended."""
    if user is None or not getattr(user, "is_authenticated", False):
        return 0
    responses = sign_out_requested.send(sender=type(user), user=user, sid=sid, reason=reason)
    return sum(result for _receiver, result in responses if isinstance(result, int))


def end_hub_sessions(user) -> None:
    """End every hub session of the person (other browsers, other devices): Django checks each
    session against a hash of the password field, so a new unusable password ends them all at their
    next request. People here have no password; a `createsuperuser` password is left alone."""
    if not user.has_usable_password():
        user.set_unusable_password()
        user.save(update_fields=["password"])
