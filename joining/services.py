"""Every write of the joining app: make, redeem and revoke invitations; ask for access, approve,
decline. Views, the console and the CLI call these; nothing else writes the joining tables.

Talking to a NAS (creating a DSM account) happens before the database transaction that records
the outcome, never inside it: a NAS that is asleep must not hold SQLite's write lock, and a
failure leaves the request open with nothing half-linked.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from social_django.models import UserSocialAuth

from accounts.models import Household, Membership, User, normalize_email
from accounts.roles import administered_household_ids, forget_cached_roles, is_operator, sync_staff_flag
from accounts.services import declare_person
from identityhub.audit import record_event
from synology.models import NAS, DSMAccount
from synology.services import link_account

from .models import AccessRequest, Invitation

log = logging.getLogger(__name__)

DEFAULT_INVITATION_LIFETIME = timedelta(days=7)
MAX_INVITATION_LIFETIME = timedelta(days=90)


class JoiningError(ValueError):
    """A user error: the message says what is wrong, in the active language; nothing was done."""


# --- tokens ---------------------------------------------------------------------------------
def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_url(token: str) -> str:
    return f"{settings.HUB_ISSUER.rstrip('/')}{reverse('joining:invitation', args=[token])}"


def find_invitation(token: str) -> Invitation | None:
    if not token or len(token) > 128 or not token.isascii():
        return None
    return (Invitation.objects.select_related("household", "person", "nas")
            .filter(token_digest=token_digest(token)).first())


# --- NAS accounts, shared by invitations and approvals ------------------------------------------
@dataclass(frozen=True)
class AccountChoice:
    """What to do about a NAS account: link an existing one, or create one on the NAS."""

    nas: NAS
    link: str = ""  # the name of an existing account
    create: str = ""  # the name of an account to create

    @property
    def name(self) -> str:
        return self.link or self.create


def _existing_account(nas: NAS, name: str, person: User | None) -> DSMAccount:
    """The present account `name` on `nas` that `person` may be linked to (case-insensitive)."""
    account = DSMAccount.objects.filter(nas=nas, name__iexact=name).first()
    if account is None or not account.present:
        raise JoiningError(_("%(nas)s has no account called “%(name)s” (as of its last sync).")
                           % {"nas": nas, "name": name})
    if account.expired:
        raise JoiningError(_("The account “%(name)s” on %(nas)s is disabled in DSM.") % {"name": account.name,
                                                                                         "nas": nas})
    if account.user_id is not None and (person is None or account.user_id != person.pk):
        raise JoiningError(_("The account “%(name)s” on %(nas)s already belongs to %(owner)s.")
                           % {"name": account.name, "nas": nas, "owner": account.user.email})
    return account


def _prepare_account(choice: AccountChoice | None, person: User | None, email: str, name: str) -> DSMAccount | None:
    """Check or create the NAS account (outside any transaction). Raises JoiningError."""
    if choice is None:
        return None
    if bool(choice.link) == bool(choice.create):
        raise JoiningError(_("Choose an existing NAS account or a name for a new one."))
    if choice.link:
        return _existing_account(choice.nas, choice.link, person)
    from synology.provisioning import ProvisioningError, provision_account

    try:
        return provision_account(choice.nas, name=choice.create, email=email, display_name=name)
    except ProvisioningError as error:
        raise JoiningError(error.message) from error


def _join(user: User, household: Household, role: str, how: str) -> None:
    membership, created = Membership.objects.get_or_create(
        user=user, household=household, defaults={"role": role, "joined_by": how})
    if not created and role == Membership.Role.ADMIN and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    sync_staff_flag(user)


# --- invitations ------------------------------------------------------------------------------
def in_reach(inviter: User | None, person: User, household: Household) -> bool:
    """May `inviter` let someone else's sign-in become `person`'s? Redeeming an invitation links
    whatever account opens it to the person, so a household admin may only invite into their own
    households, and only people who are new or belong to no household they do not administer —
    never an operator. Operators (and the `hub` command, `inviter=None`) may invite anyone."""
    if inviter is None or is_operator(inviter):
        return True
    forget_cached_roles(inviter)
    mine = administered_household_ids(inviter)
    if household.pk not in mine or person.is_superuser:
        return False
    theirs = set(Membership.objects.filter(user=person).values_list("household_id", flat=True))
    return theirs <= mine


def parse_lifetime(text: str) -> timedelta:
    """`7d`, `36h`, `90m` → a timedelta (at most 90 days). Raises JoiningError."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    text = (text or "").strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isascii() or not text[:-1].isdigit():
        raise JoiningError(_("“%(value)s” is not a duration such as 7d, 36h or 90m.") % {"value": text})
    lifetime = timedelta(**{units[text[-1]]: int(text[:-1])})
    if not timedelta(minutes=5) <= lifetime <= MAX_INVITATION_LIFETIME:
        raise JoiningError(_("An invitation lasts between 5 minutes and 90 days."))
    return lifetime


def invite(household: Household, email: str, *, name: str = "", role: str = Membership.Role.MEMBER,
           account: AccountChoice | None = None, lifetime: timedelta = DEFAULT_INVITATION_LIFETIME,
           by: User | None = None) -> tuple[Invitation, str]:
    """Declare the person if needed and make a single-use invitation; returns it and its URL
    (shown once: only a digest is kept). A NAS account to link is checked, one to create is
    created on the NAS now — the admin sees a NAS problem at once — and linked to the person."""
    email = normalize_email(email)
    if "@" not in email or len(email) > 254:
        raise JoiningError(_("“%(email)s” is not an email address.") % {"email": email})
    if role not in Membership.Role.values:
        raise JoiningError(_("The role must be member or admin."))
    if account is not None and account.nas.household_id != household.pk:
        raise JoiningError(_("%(nas)s does not belong to %(household)s.") % {"nas": account.nas,
                                                                            "household": household})
    existing = User.objects.filter(email=email).first()
    if existing is not None and not existing.is_active:
        raise JoiningError(_("%(email)s is disabled on this hub.") % {"email": email})
    if by is not None and not is_operator(by) and household.pk not in administered_household_ids(by):
        raise JoiningError(_("You are not an admin of %(household)s.") % {"household": household})
    if existing is not None and not in_reach(by, existing, household):
        raise JoiningError(_("%(email)s is also in a household you do not run: ask an operator to invite them.")
                           % {"email": email})
    dsm_account = _prepare_account(account, existing, email, name)
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        person = existing or declare_person(email, name)
        if dsm_account is not None:
            _existing_account(dsm_account.nas, dsm_account.name, person)  # still free, now under the lock
            if dsm_account.user_id != person.pk:
                link_account(dsm_account, person)
        invitation = Invitation.objects.create(
            token_digest=token_digest(token), household=household, person=person, role=role,
            nas=account.nas if account else None, account_name=dsm_account.name if dsm_account else "",
            created_by=by, expires_at=timezone.now() + lifetime)
        record_event("admin_change", reason="invitation_made", user=by, email=email,
                     nas_id=account.nas.pk if account else "", household=household.pk, invitation=invitation.pk,
                     account=invitation.account_name)
    return invitation, invitation_url(token)


def revoke_invitation(invitation: Invitation, *, by: User | None = None) -> bool:
    """Revoke a waiting invitation; False when it was no longer waiting."""
    done = Invitation.objects.filter(pk=invitation.pk, used_at=None, revoked_at=None).update(
        revoked_at=timezone.now())
    if done:
        record_event("admin_change", reason="invitation_revoked", user=by, email=invitation.person.email,
                     household=invitation.household_id, invitation=invitation.pk)
    return bool(done)


def claim_invitation(invitation: Invitation, *, used_with: str) -> bool:
    """Use the invitation (inside the caller's transaction): True once, for one caller only, while
    it is waiting; the person joins the household with the invited role."""
    now = timezone.now()
    claimed = Invitation.objects.filter(pk=invitation.pk, used_at=None, revoked_at=None,
                                        expires_at__gt=now).update(used_at=now, used_with=used_with[:64])
    if not claimed:
        return False
    person = invitation.person
    if not person.is_active:
        raise JoiningError(_("This account is disabled."))
    if not in_reach(invitation.created_by, person, invitation.household):  # roles changed since
        raise JoiningError(_("This invitation can no longer be used."))
    _join(person, invitation.household, invitation.role, "invitation")
    record_event("admin_change", reason="invitation_used", user=person, household=invitation.household_id,
                 invitation=invitation.pk, used_with=used_with)
    return True


# --- access requests --------------------------------------------------------------------------
@dataclass(frozen=True)
class AskContext:
    """What a refusal page knows about someone who may ask for access (kept in their session)."""

    email: str
    name: str
    household_id: str
    client_id: str = ""
    nas_id: str = ""
    user_id: int | None = None
    upstream_id: str = ""
    subject: str = ""
    id_key: str = ""
    issuer: str = ""

    def as_session(self) -> dict[str, Any]:
        return dict(self.__dict__)


def open_request(email: str, client_id: str) -> AccessRequest | None:
    return AccessRequest.objects.filter(email=normalize_email(email), client_id=client_id,
                                        state=AccessRequest.State.OPEN).first()


def latest_request(email: str, client_id: str) -> AccessRequest | None:
    return (AccessRequest.objects.filter(email=normalize_email(email), client_id=client_id)
            .order_by("-created_at").first())


def request_access(ask: AskContext) -> tuple[AccessRequest, bool]:
    """Record the request (one open request per person and app); returns it and whether it is new.
    Nothing is created for the requester: no person, link, membership or account."""
    email = normalize_email(ask.email)
    existing = open_request(email, ask.client_id)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            request = AccessRequest.objects.create(
                household_id=ask.household_id, client_id=ask.client_id, nas_id=ask.nas_id or None, email=email,
                name=ask.name[:150], user_id=ask.user_id, upstream_id=ask.upstream_id, subject=ask.subject,
                id_key=ask.id_key, issuer=ask.issuer)
    except IntegrityError:  # a concurrent request of the same person for the same app won
        return open_request(email, ask.client_id), False
    record_event("admin_change", reason="access_requested", email=email, client_id=ask.client_id,
                 nas_id=ask.nas_id, household=ask.household_id, request=request.pk)
    transaction.on_commit(lambda: _notify(request.pk))
    return request, True


def _notify(request_id: int) -> None:
    if not settings.HUB_EMAIL_ENABLED:
        return
    from .tasks import notify_admins

    try:
        notify_admins.delay(request_id)
    except Exception:  # the broker is down: the request stands, the console shows it
        log.warning("could not queue the notification of access request %s", request_id, exc_info=True)


def _person_for(request: AccessRequest) -> User | None:
    if request.user_id is not None:
        return request.user
    return User.objects.filter(email=request.email).first()


def approve_request(request: AccessRequest, *, by: User | None = None, account: AccountChoice | None = None) -> str:
    """Let the requester in: the person (declared now if new), the membership, the sign-in link,
    and for a NAS-bound app the NAS account (linked, or created on the NAS first). Returns what
    was done, in one line. Raises JoiningError — the request then stays open, with the reason
    kept in its outcome, and nothing half-done."""
    if request.state != AccessRequest.State.OPEN:
        raise JoiningError(_("This request was already answered (%(state)s).") % {
            "state": request.get_state_display()})
    nas = request.nas
    person = _person_for(request)
    if account is not None and nas is None:
        raise JoiningError(_("This app is not bound to a NAS: there is no account to choose."))
    if account is not None and account.nas.pk != nas.pk:
        raise JoiningError(_("%(nas)s does not belong to %(household)s.") % {"nas": account.nas,
                                                                            "household": request.household})
    if nas is not None and account is None and not (person is not None and DSMAccount.objects.filter(
            nas=nas, user=person, present=True, expired=False).exists()):
        raise JoiningError(_("Choose the account on %(nas)s: an existing one, or a new one the hub creates.")
                           % {"nas": nas})
    if person is not None and not person.is_active:
        raise _failed(request, _("%(email)s is disabled on this hub.") % {"email": request.email})
    _check_link_free(request, person)
    try:
        dsm_account = _prepare_account(account, person, request.email, request.name)
    except JoiningError as error:
        raise _failed(request, str(error)) from error
    with transaction.atomic():
        locked = AccessRequest.objects.select_for_update().get(pk=request.pk)
        if locked.state != AccessRequest.State.OPEN:
            raise JoiningError(_("This request was already answered (%(state)s).") % {
                "state": locked.get_state_display()})
        person = _person_for(locked) or declare_person(locked.email, locked.name)
        _check_link_free(locked, person)
        _join(person, locked.household, Membership.Role.MEMBER, "request")
        if locked.upstream_id and locked.subject and not UserSocialAuth.objects.filter(
                provider=locked.upstream_id, uid=locked.subject).exists():
            # As social-auth's associate_user makes it, with the issuer bound (accounts.pipeline).
            link = UserSocialAuth.create_social_auth(person, locked.subject, locked.upstream_id, id_key=locked.id_key)
            link.extra_data = {"iss": locked.issuer} if locked.issuer else {}
            link.save(update_fields=["extra_data"])
        done = [_("%(email)s joined %(household)s") % {"email": person.email, "household": locked.household}]
        if dsm_account is not None:
            _existing_account(dsm_account.nas, dsm_account.name, person)
            if dsm_account.user_id != person.pk:
                link_account(dsm_account, person)
            done.append((_("with the new account %(name)s on %(nas)s") if account and account.create
                         else _("with the account %(name)s on %(nas)s")) % {"name": dsm_account.name, "nas": nas})
        outcome = " ".join(done) + "."
        locked.state, locked.decided_at, locked.decided_by = AccessRequest.State.APPROVED, timezone.now(), by
        locked.user, locked.outcome = person, outcome
        locked.save(update_fields=["state", "decided_at", "decided_by", "user", "outcome"])
        record_event("admin_change", reason="access_approved", user=by, email=person.email,
                     client_id=locked.client_id, nas_id=nas.pk if nas else "", request=locked.pk,
                     account=dsm_account.name if dsm_account else "")
    request.refresh_from_db()
    return outcome


def _check_link_free(request: AccessRequest, person: User | None) -> None:
    if not (request.upstream_id and request.subject):
        return
    link = UserSocialAuth.objects.filter(provider=request.upstream_id, uid=request.subject).first()
    if link is not None and (person is None or link.user_id != person.pk):
        raise _failed(request, _("This %(upstream)s account is already linked to %(email)s.")
                      % {"upstream": request.upstream_id, "email": link.user.email})
    if link is None and person is not None and UserSocialAuth.objects.filter(
            provider=request.upstream_id, user=person).exists():
        raise _failed(request, _("%(email)s is already linked to another %(upstream)s account.")
                      % {"email": person.email, "upstream": request.upstream_id})


def _failed(request: AccessRequest, message: str) -> JoiningError:
    """Keep the failure on the request (the console shows it) and return the error to raise."""
    AccessRequest.objects.filter(pk=request.pk, state=AccessRequest.State.OPEN).update(outcome=message)
    request.outcome = message
    return JoiningError(message)


def decline_request(request: AccessRequest, *, by: User | None = None) -> str:
    done = AccessRequest.objects.filter(pk=request.pk, state=AccessRequest.State.OPEN).update(
        state=AccessRequest.State.DECLINED, decided_at=timezone.now(), decided_by=by,
        outcome=_("Declined."))
    if not done:
        raise JoiningError(_("This request was already answered."))
    record_event("admin_change", reason="access_declined", user=by, email=request.email,
                 client_id=request.client_id, request=request.pk)
    request.refresh_from_db()
    return _("The request of %(email)s was declined.") % {"email": request.email}
