"""Who may use which client, and what the client is told about them.

One decision function, `check_access`, runs at the authorization endpoint, at every token
exchange and refresh, at userinfo and in `hub claims`: a person who left the household or lost
their NAS account stops getting tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from django.db import connection
from django.utils.translation import gettext as _
from oauth2_provider.models import Application

from accounts.models import Membership
from synology.models import NAS, DSMAccount
from synology.selectors import dsm_username_for

from .models import ClientProfile


@dataclass(frozen=True)
class Refusal:
    reason: str  # machine-readable, recorded in the audit trail
    message: str  # what the person sees, in the active language
    advice: str = ""  # what to do about it, in the active language


@dataclass
class AccessDecision:
    refusal: Refusal | None = None
    dsm_username: str | None = None
    household_roles: dict[str, str] = field(default_factory=dict)  # household id -> role
    nas_id: str = ""

    @property
    def allowed(self) -> bool:
        return self.refusal is None


@cache
def _membership_sql() -> str:
    membership = Membership._meta.db_table
    client_households = ClientProfile.households.through._meta.db_table
    account = DSMAccount._meta.db_table
    nas = NAS._meta.db_table
    # Table names come from model metadata; every value is a bound parameter.
    return f"""
        SELECT m.household_id, m.role,
               EXISTS (SELECT 1 FROM {client_households} ch
                        WHERE ch.clientprofile_id = %(profile)s AND ch.household_id = m.household_id),
               EXISTS (SELECT 1 FROM {client_households} ch WHERE ch.clientprofile_id = %(profile)s),
               (SELECT n.household_id FROM {nas} n WHERE n.id = %(nas)s),
               (SELECT a.name FROM {account} a
                 WHERE a.nas_id = %(nas)s AND a.user_id = %(user)s AND a.present AND NOT a.expired
                 ORDER BY CASE a.linked_by WHEN 'explicit' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, a.name
                 LIMIT 1)
          FROM {membership} m
         WHERE m.user_id = %(user)s
    """  # noqa: S608


def membership_rows(user_id: int, profile_id: int, nas_id: str | None) -> list[tuple]:
    """Per membership: (household, role, listed for the client, client lists any households,
    the NAS's household, the person's account name on that NAS).

    Raw SQL on purpose: this runs at every authorization, token exchange and userinfo call, and
    the equivalent ORM query (Exists + Subquery annotations) costs ~30x more to compile than to
    run. synology.selectors.linked_account_names is the ORM twin of the account ordering.
    """
    with connection.cursor() as cursor:
        cursor.execute(_membership_sql(), {"profile": profile_id, "nas": nas_id or "", "user": user_id})
        return cursor.fetchall()


def check_access(user, application: Application, *, allow_quick_sync: bool = False) -> AccessDecision:
    """Decide whether `user` may sign in to `application`, and find their NAS account name.

    One query (see membership_rows); the application arrives with its profile loaded.
    """
    if user is None or not user.is_active:
        return AccessDecision(Refusal("inactive", _("This account is disabled."), _("Ask your household admin.")))
    label = application.name or application.client_id
    try:
        profile = application.profile
    except Application.profile.RelatedObjectDoesNotExist:
        return AccessDecision(Refusal("client_unconfigured", _("%(app)s is not set up for sign-in.") % {"app": label},
                                      _("Ask your household admin to give this app its households.")))

    rows = membership_rows(user.pk, profile.pk, profile.nas_id)
    decision = AccessDecision(household_roles={row[0]: row[1] for row in rows}, nas_id=profile.nas_id or "")
    allowed = any(listed or (not any_listed and household == nas_household)
                  for household, _role, listed, any_listed, nas_household, _name in rows)
    if not allowed:
        decision.refusal = Refusal(
            "not_in_household",
            _("%(email)s is not a member of a household that may use %(app)s.") % {"email": user.email, "app": label},
            _("Ask your household admin to add you."),
        )
        return decision
    if profile.nas_id:
        username = rows[0][5]
        if username is None:
            # Fresh (the cached profile's NAS may be stale), without decrypting the service password:
            # a refusal page must not fail on a changed HUB_ENCRYPTION_KEY (the sync reports that).
            nas = NAS.objects.defer("service_password").get(pk=profile.nas_id)
            if allow_quick_sync:
                username = dsm_username_for(nas, user, allow_quick_sync=True)
        if username is None:
            decision.refusal = Refusal(
                "no_nas_account",
                _("%(email)s has no account on %(nas)s.") % {"email": user.email, "nas": nas},
                _("Ask your household admin to create a DSM account with your email address, "
                  "or to map your email to your existing account."),
            )
            return decision
        decision.dsm_username = username
    return decision
