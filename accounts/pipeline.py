"""The login policy as social-auth pipeline steps.

A first sign-in links an upstream identity to a declared person only when the upstream says the
email is verified, the domain is allowed for that upstream, and the email equals exactly one
declared, active person who has no link for that upstream yet. Afterwards the (upstream, subject)
link is what counts — under the issuer it was made with: a link records that issuer
(`extra_data["iss"]`, by `bind_link_to_issuer`), and a link made under another issuer than the
upstream's current one is dropped, never followed (the new issuer's `sub` values are not the old
one's). Nothing is ever created: unknown people are refused.
"""

from __future__ import annotations

import logging

from django.utils.translation import gettext as _
from social_core.exceptions import AuthException
from social_django.models import UserSocialAuth

from .models import GOOGLE_ISSUER, User, normalize_domain, normalize_email

log = logging.getLogger(__name__)


class SignInRefused(AuthException):
    def __init__(self, backend, reason: str, message: str, advice: str = "", email: str = "",
                 identity: dict | None = None) -> None:
        super().__init__(backend, message)
        self.reason = reason
        self.message = message
        self.advice = advice
        self.email = email
        self.identity = identity or {}  # what the upstream proved, for a refusal page's offers

    def __str__(self) -> str:
        return self.message


def _claim(backend, response: dict, name: str):
    if name in response:
        return response[name]
    id_token = getattr(backend, "id_token", None) or {}
    return id_token.get(name)


def is_verified(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def token_issuer(backend) -> str | None:
    """The `iss` of the upstream's validated ID token (None for the mock upstream), normalised."""
    iss = (getattr(backend, "id_token", None) or {}).get("iss")
    if not isinstance(iss, str):
        return None
    if iss == "accounts.google.com":  # Google's documented scheme-less form of its issuer
        iss = GOOGLE_ISSUER
    return iss.rstrip("/")


def link_issuer(social) -> str | None:
    return (social.extra_data or {}).get("iss") if isinstance(social.extra_data, dict) else None


def link_declared_person(backend, details, response, uid, user=None, social=None, *args, **kwargs):
    issuer = backend.upstream.effective_issuer
    answered_as = token_issuer(backend)
    if answered_as is not None and answered_as != issuer:
        raise SignInRefused(backend, "issuer_mismatch",
                            _("%(upstream)s answered as another issuer than the one configured on this hub.")
                            % {"upstream": backend.upstream.label},
                            _("Tell your household admin."))
    dropped: dict = {}
    if social is not None and link_issuer(social) != issuer:
        # Made under an issuer this upstream no longer has: the subject may be someone else's now.
        log.info("dropping the %s sign-in link %s made under issuer %r (now %r)", backend.name, social.pk,
                 link_issuer(social), issuer)
        social.delete()
        user = social = None
        dropped = {"user": None, "social": None}
    if user is not None:  # an existing (upstream, subject) link decides
        if not user.is_active:
            raise SignInRefused(backend, "inactive", _("The account %(email)s is disabled.") % {"email": user.email},
                                _("Ask your household admin."), email=user.email)
        return None

    upstream = backend.upstream.label
    email = normalize_email(details.get("email") or _claim(backend, response, "email") or "")
    if not email:
        raise SignInRefused(backend, "no_email",
                            _("%(upstream)s did not tell us your email address.") % {"upstream": upstream},
                            _("Allow the hub to see your email address and try again."))
    if not is_verified(_claim(backend, response, "email_verified")):
        raise SignInRefused(backend, "email_unverified",
                            _("%(upstream)s has not verified the address %(email)s.") % {"upstream": upstream,
                                                                                       "email": email},
                            _("Verify it with %(upstream)s, then sign in again.") % {"upstream": upstream},
                            email=email)
    domains = [normalize_domain(d) for d in backend.upstream.allowed_domains or []]
    domain = email.rsplit("@", 1)[-1]
    if domains and domain not in domains:
        raise SignInRefused(backend, "domain_not_allowed",
                            _("Addresses at %(domain)s may not sign in with %(upstream)s.") % {"domain": domain,
                                                                                             "upstream": upstream},
                            _("Use an address your household admin has declared."), email=email)
    person = User.objects.filter(email=email).first()
    if person is None or not person.is_active:
        # The upstream verified this address: a refusal page may offer to ask for access with it.
        identity = {"upstream": backend.name, "uid": str(uid), "id_key": kwargs.get("id_key") or "", "iss": issuer,
                    "email": email,
                    "name": (details.get("fullname") or _claim(backend, response, "name") or "")[:150]}
        raise SignInRefused(backend, "unknown_person",
                            _("%(email)s is not a member of any household on this hub.") % {"email": email},
                            _("Ask your household admin to add this address, then sign in again."), email=email,
                            identity=identity if person is None else None)
    for stale in UserSocialAuth.objects.filter(provider=backend.name, user=person):
        if link_issuer(stale) != issuer:  # this person's links under a former issuer count no more
            stale.delete()
    if UserSocialAuth.objects.filter(provider=backend.name, user=person).exists():
        raise SignInRefused(backend, "already_linked",
                            _("%(email)s is already linked to another %(upstream)s account.") % {"email": email,
                                                                                               "upstream": upstream},
                            _("Sign in with the account you used before, or ask your admin to unlink it."),
                            email=email)
    return {**dropped, "user": person, "is_new": False, "linked_now": True}


def bind_link_to_issuer(backend, social=None, new_association=False, *args, **kwargs):
    """After `associate_user`: a new link records the issuer it was made under."""
    if social is None or not new_association:
        return None
    issuer = backend.upstream.effective_issuer
    if link_issuer(social) != issuer:
        social.extra_data = {**(social.extra_data if isinstance(social.extra_data, dict) else {}), "iss": issuer}
        social.save(update_fields=["extra_data"])
    return None
