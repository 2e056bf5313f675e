"""The login policy as social-auth pipeline steps.

A first sign-in links an upstream identity to a declared person only when the upstream says the
email is verified, the domain is allowed for that upstream, and the email equals exactly one
declared, active person who has no link for that upstream yet. Afterwards the (upstream, subject)
link is what counts. Nothing is ever created: unknown people are refused.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from social_core.exceptions import AuthException
from social_django.models import UserSocialAuth

from .models import User, normalize_domain, normalize_email


class SignInRefused(AuthException):
    def __init__(self, backend, reason: str, message: str, advice: str = "", email: str = "") -> None:
        super().__init__(backend, message)
        self.reason = reason
        self.message = message
        self.advice = advice
        self.email = email

    def __str__(self) -> str:
        return self.message


def _claim(backend, response: dict, name: str):
    if name in response:
        return response[name]
    id_token = getattr(backend, "id_token", None) or {}
    return id_token.get(name)


def is_verified(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def link_declared_person(backend, details, response, uid, user=None, social=None, *args, **kwargs):
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
        raise SignInRefused(backend, "unknown_person",
                            _("%(email)s is not a member of any household on this hub.") % {"email": email},
                            _("Ask your household admin to add this address, then sign in again."), email=email)
    if UserSocialAuth.objects.filter(provider=backend.name, user=person).exists():
        raise SignInRefused(backend, "already_linked",
                            _("%(email)s is already linked to another %(upstream)s account.") % {"email": email,
                                                                                               "upstream": upstream},
                            _("Sign in with the account you used before, or ask your admin to unlink it."),
                            email=email)
    return {"user": person, "is_new": False, "linked_now": True}
