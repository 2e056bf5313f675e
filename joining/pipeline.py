"""Redeeming an invitation with an upstream: two social-auth pipeline steps around the link.

`invited_person` (before the login policy) names the invited person as the one signing in, even
when the upstream's email differs from the invited one: the single-use link is the proof.
`use_invitation` (after the link is made) claims the invitation; when someone else claimed it in
the meantime, the link just made is removed again and the sign-in is refused.
"""

from __future__ import annotations

import time

from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _
from social_django.models import UserSocialAuth

from accounts.pipeline import SignInRefused

from .models import Invitation
from .services import JoiningError, claim_invitation

INVITATION_SESSION_KEY = "hub_invitation"  # {"id": pk, "digest": token digest, "at": when started}
# A sign-in started from an invitation and abandoned must not apply it to a later, unrelated
# sign-in in the same browser (a family computer): only within this time, and only on the way
# back to the welcome page the invitation's sign-in asked for.
PENDING_SECONDS = 30 * 60


def pending_invitation(session) -> Invitation | None:
    """The waiting invitation this browser is redeeming, or None."""
    pending = session.get(INVITATION_SESSION_KEY)
    if not isinstance(pending, dict):
        return None
    invitation = (Invitation.objects.select_related("person", "household")
                  .filter(pk=pending.get("id"), token_digest=pending.get("digest") or "-").first())
    return invitation


def _not_valid(backend) -> SignInRefused:
    return SignInRefused(backend, "invitation_not_valid", _("This invitation can no longer be used."),
                         _("Ask your household admin for a new invitation."))


def invited_person(backend, strategy, uid, user=None, *args, **kwargs):
    session = strategy.request.session
    pending = session.get(INVITATION_SESSION_KEY)
    if pending is None:
        return None
    started = pending.get("at", 0) if isinstance(pending, dict) else 0
    if time.time() - started > PENDING_SECONDS or session.get("next") != reverse("joining:welcome"):
        session.pop(INVITATION_SESSION_KEY, None)  # an abandoned invitation sign-in: an ordinary one now
        return None
    invitation = pending_invitation(session)
    if invitation is None or invitation.state != Invitation.State.PENDING:
        session.pop(INVITATION_SESSION_KEY, None)
        raise _not_valid(backend)
    person = invitation.person
    upstream = backend.upstream.label
    if user is not None and user.pk != person.pk:
        session.pop(INVITATION_SESSION_KEY, None)
        raise SignInRefused(backend, "invitation_other_person",
                            _("This %(upstream)s account already belongs to %(email)s.") % {
                                "upstream": upstream, "email": user.email},
                            _("Open the invitation again and sign in with another account."), email=user.email)
    if user is None and UserSocialAuth.objects.filter(provider=backend.name, user=person).exists():
        session.pop(INVITATION_SESSION_KEY, None)
        raise SignInRefused(backend, "already_linked",
                            _("%(email)s is already linked to another %(upstream)s account.") % {
                                "email": person.email, "upstream": upstream},
                            _("Sign in with the account you used before, or ask your admin to unlink it."),
                            email=person.email)
    return {"user": person, "is_new": False, "invitation_id": invitation.pk}


def use_invitation(backend, strategy, user=None, social=None, new_association=False, invitation_id=None,
                   *args, **kwargs):
    if invitation_id is None:
        return None
    strategy.request.session.pop(INVITATION_SESSION_KEY, None)
    invitation = Invitation.objects.select_related("person", "household").get(pk=invitation_id)
    try:
        with transaction.atomic():
            claimed = claim_invitation(invitation, used_with=backend.name)
    except JoiningError:
        claimed = False
    if not claimed:
        if new_association and social is not None:
            social.delete()
        raise _not_valid(backend)
    return None
