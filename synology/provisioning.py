"""Creating DSM accounts on a NAS for the hub's people (issue 8: "a DSM account on approval").

Other apps (joining: invitations and access requests) call four functions:

* :func:`check_new_account_name` — is a name fit for a new account on a NAS (characters, length,
  reserved names, taken per the last listing)?
* :func:`suggest_account_name` — a free, valid name from a display name or an email.
* :func:`linkable_accounts` — the accounts an admin may link a new person to instead.
* :func:`provision_account` — create the account on the NAS and return its synced DSMAccount row.

What ``provision_account`` promises: it never runs inside a database transaction (HTTP calls must
not hold SQLite's write lock); the generated password is never stored, logged, returned or shown —
nobody signs in to DSM with it, people sign in through the hub; no DSMAccount row is made by hand —
only a successful listing (``synology.sync.sync_nas``) makes the row; every failure is a
:class:`ProvisioningError` with one human line. An account made by the hub carries the marker
``Created by Identity Hub for <email>`` in its DSM description, so a retry after a failure half-way
(created, then the NAS went down before the group join or the listing) adopts it instead of failing
with "name taken"; an account the hub did not make for that email is never adopted.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections.abc import Iterable

from django.db.models import QuerySet
from django.db.transaction import TransactionManagementError
from django.utils.translation import gettext

from accounts.models import normalize_email
from identityhub.audit import record_event
from identityhub.crypto import DecryptionError

from .dsm import (
    BAD_NAME,
    NAME_TAKEN,
    WEAK_PASSWORD,
    DSMApiError,
    DSMAuthError,
    DSMClient,
    DSMError,
    DSMUnreachable,
    DSMUser,
    PasswordPolicy,
    Timeout,
)
from .models import NAS, AccountMapping, DSMAccount
from .services import _in_transaction, has_service_account
from .sync import NO_SERVICE_ACCOUNT, sync_nas

log = logging.getLogger(__name__)

MARKER_PREFIX = "Created by Identity Hub for "
NAME_MAX = 64  # DSM's limit for a local account name (an inference from DSM's own form)
# The hub keeps to a subset of what DSM accepts: DSM refuses `@` and most punctuation; these names
# also work in every share path, SMB, SSH and the apps that show them.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Names DSM keeps for itself (system accounts and groups; an inference, DSM's list is not published).
RESERVED_NAMES = frozenset({
    "admin", "administrator", "administrators", "guest", "root", "daemon", "nobody", "system", "users", "http",
    "ftp", "anonymous", "sshd", "postfix", "mysql", "postgres", "www", "everyone",
})
PASSWORD_LENGTH = 24
PASSWORD_MAX = 127  # DSM refuses longer passwords (an inference from its user form)
_LOWER = "abcdefghijkmnopqrstuvwxyz"
_UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_DIGITS = "23456789"
_SPECIAL = "!#%*+-.:=?@^_~"
PASSWORD_CLASSES = (_LOWER, _UPPER, _DIGITS, _SPECIAL)

PROVISION_TIMEOUT: tuple[float, float] = (5.0, 15.0)  # an admin is waiting on a page
PROVISION_DEADLINE = 30.0  # seconds for the whole conversation: create, groups, re-read, logout
LISTING_DEADLINE = 20.0  # the sync that makes the row
LISTING_LOCK_WAIT = 5.0  # a scheduled sync holding the lock usually ends well within this
PROVISION_SESSION = "IdentityHubProvision"  # its own DSM session name: a running sync's stays untouched
SYNC_TRIGGER = "new-account"

OUTCOMES = ("unreachable", "auth_failed", "name_taken", "bad_name", "weak_password", "no_permission", "not_listed",
            "no_service_account", "error")


class ProvisioningError(Exception):
    """The account was not (fully) made. `message` is one human line (the active language; DSM's
    own part stays English) with DSM's error code when there is one, never a secret."""

    def __init__(self, outcome: str, message: str, code: int | None = None) -> None:
        assert outcome in OUTCOMES, outcome
        super().__init__(message)
        self.outcome = outcome
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"ProvisioningError({self.outcome!r}, {self.message!r}, code={self.code!r})"


# --- names ----------------------------------------------------------------------------------------
def account_marker(email: str) -> str:
    """The DSM description of an account the hub creates: how a retry recognises its own work."""
    return f"{MARKER_PREFIX}{normalize_email(email)}"


def made_by_hub_for(description: str, email: str) -> bool:
    """True when a DSM description is the hub's marker for `email` (emails compared normalised)."""
    text = (description or "").strip()
    if not text.startswith(MARKER_PREFIX) or not email:
        return False
    return normalize_email(text[len(MARKER_PREFIX):]) == normalize_email(email)


def _format_problem(name: str) -> str | None:
    if not name:
        return gettext("An account name is needed.")
    if len(name) > NAME_MAX:
        return gettext("“%(name)s” is longer than %(max)s characters.") % {"name": name, "max": NAME_MAX}
    if not _NAME.fullmatch(name):
        return gettext("“%(name)s” cannot be a DSM account name: use letters a–z, digits, dots, hyphens and "
                       "underscores, starting with a letter or a digit (no @, spaces or other punctuation).") % {
            "name": name}
    if name.lower() in RESERVED_NAMES:
        return gettext("“%(name)s” is a name DSM keeps for itself.") % {"name": name}
    return None


def _listed(nas: NAS, name: str) -> DSMAccount | None:
    """The account of the last listing whose name equals `name` case-insensitively (present or absent)."""
    return DSMAccount.objects.select_related("user").filter(nas=nas, name__iexact=name).first()


def _adoptable(row: DSMAccount, email: str) -> bool:
    """A listed account an earlier attempt made for `email` (and that nobody else owns)."""
    if not made_by_hub_for(row.description, email):
        return False
    return row.user_id is None or normalize_email(row.user.email) == normalize_email(email)


def _mapped_elsewhere(nas: NAS, name: str, email: str) -> str | None:
    """The email of an explicit mapping that names this account for someone else, or None."""
    mappings = AccountMapping.objects.filter(nas=nas, account_name__iexact=name)
    if email:
        mappings = mappings.exclude(email=normalize_email(email))
    return mappings.values_list("email", flat=True).first()


def check_new_account_name(nas: NAS, name: str, *, email: str = "") -> str | None:
    """A problem with `name` as a new DSM account on `nas`, or None.

    Bad characters (DSM names cannot contain `@` or most punctuation), too long, a name DSM keeps for
    itself, taken per the last listing (case-insensitively, present or absent accounts), or named by
    an explicit mapping for someone else. With `email`, an account the hub itself created for that
    email in an earlier, failed attempt is no problem: `provision_account` adopts it.
    """
    problem = _format_problem(name)
    if problem:
        return problem
    row = _listed(nas, name)
    if row is not None and not (email and _adoptable(row, email)):
        return gettext("“%(name)s” is taken on %(nas)s (account “%(existing)s”, as of its last sync).") % {
            "name": name, "nas": nas, "existing": row.name}
    other = _mapped_elsewhere(nas, name, email)
    if other:
        return gettext("“%(name)s” on %(nas)s is kept for %(email)s by an explicit mapping.") % {
            "name": name, "nas": nas, "email": other}
    return None


def _slug(text: str) -> str:
    """ "Maël O'Brien" -> "mael.o.brien": ASCII letters and digits, `.`, `_`, `-`, no leading separator."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9._-]+", ".", ascii_text)
    slug = re.sub(r"([._-])[._-]+", r"\1", slug)
    return slug.strip("._-")[:NAME_MAX].rstrip("._-")


def suggest_account_name(nas: NAS, email: str, name: str = "") -> str:
    """A free, valid name for a new account: from the display name ("Granny Smith" -> "granny.smith"),
    else the email's local part (without a `+tag`), else "user"; with a numeric suffix (2, 3, …) when
    that is taken or reserved. `check_new_account_name(nas, result)` accepts it."""
    local = normalize_email(email).split("@", 1)[0].split("+", 1)[0]
    base = _slug(name) or _slug(local) or "user"
    taken = {n.lower() for n in DSMAccount.objects.filter(nas=nas).values_list("name", flat=True)}
    mapped = AccountMapping.objects.filter(nas=nas).exclude(email=normalize_email(email))
    taken |= {n.lower() for n in mapped.values_list("account_name", flat=True)}

    def free(candidate: str) -> bool:
        return candidate.lower() not in taken and _format_problem(candidate) is None

    if free(base):
        return base
    number = 2
    while True:
        suffix = str(number)
        candidate = base[: NAME_MAX - len(suffix)] + suffix
        if free(candidate):
            return candidate
        number += 1


def linkable_accounts(nas: NAS) -> QuerySet[DSMAccount]:
    """Present, not expired, not linked to anyone: what an admin may link a new person to."""
    return DSMAccount.objects.filter(nas=nas, present=True, expired=False, user__isnull=True).order_by("name")


# --- passwords ------------------------------------------------------------------------------------
def generate_password(policy: PasswordPolicy, name: str) -> str:
    """A random password (``secrets``) that satisfies `policy`: max(its minimum, 24) characters, every
    character class (lower, upper, digit, special) whatever the policy asks, never containing `name`
    (case-insensitively). Raises ValueError when no such password fits DSM's limits."""
    length = max(policy.required_length, PASSWORD_LENGTH)
    if length > PASSWORD_MAX:
        raise ValueError(f"the policy asks for at least {length} characters; DSM accepts at most {PASSWORD_MAX}")
    alphabet = "".join(PASSWORD_CLASSES)
    shuffle = secrets.SystemRandom().shuffle
    for _ in range(200):
        chars = [secrets.choice(group) for group in PASSWORD_CLASSES]
        chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
        shuffle(chars)
        password = "".join(chars)
        if not name or name.lower() not in password.lower():
            return password
    raise ValueError("no password avoiding the account name could be made")


# --- creating an account --------------------------------------------------------------------------
def _clean_groups(groups: Iterable[str]) -> list[str]:
    if isinstance(groups, str):  # "family" would otherwise be six groups of one letter
        groups = [groups]
    clean: list[str] = []
    for group in groups:
        if not isinstance(group, str) or not group.strip():
            raise ProvisioningError("error", gettext("The DSM groups for new accounts must be names: %(groups)s")
                                    % {"groups": ", ".join(map(str, groups))})
        if group.strip() not in clean:
            clean.append(group.strip())
    return clean


def provision_account(
    nas: NAS,
    *,
    name: str,
    email: str,
    display_name: str = "",
    groups: list[str] | None = None,
    timeout: Timeout = PROVISION_TIMEOUT,
    deadline: float = PROVISION_DEADLINE,
) -> DSMAccount:
    """Create the account `name` on the NAS and return its synced, present DSMAccount row.

    The row is not linked by this function (callers link it) — except that the sync's usual email rule
    may already have linked it to an active person whose email is `email`. Steps: check the name;
    log in with the service account; read the password policy; create the account with a random
    password that satisfies it (description: the hub's marker, email `email`, never expires); join
    the NAS's `new_account_groups` (or `groups`); re-read it and check what DSM reports; log out; sync
    the NAS. An account an earlier attempt made for the same email is adopted (groups joined again,
    no new password). `display_name` goes in the audit event only (DSM's description holds the
    marker). Raises ProvisioningError (outcome and message), and TransactionManagementError when
    called inside a database transaction. Records an audit event on success only.
    """
    if _in_transaction():
        raise TransactionManagementError(
            "provision_account talks to the NAS over HTTP: call it outside any database transaction")
    nas = NAS.objects.get(pk=nas.pk)  # fresh: enabled, groups and service account as stored now
    email = normalize_email(email)
    if "@" not in email:
        raise ProvisioningError("error", gettext("“%(email)s” is not an email address.") % {"email": email})
    if not nas.enabled:
        raise ProvisioningError("error", gettext("%(nas)s is disabled: enable it to create accounts on it.")
                                % {"nas": nas})
    if not has_service_account(nas):
        raise ProvisioningError("no_service_account", f"{nas}: {NO_SERVICE_ACCOUNT}")
    problem = _format_problem(name)
    if problem:
        raise ProvisioningError("bad_name", problem)
    taken = check_new_account_name(nas, name, email=email)  # the format is fine: only "taken" is left
    if taken:
        raise ProvisioningError("name_taken", taken)
    listed = _listed(nas, name)  # None, or an account an earlier attempt made for this email
    wanted_groups = _clean_groups(list(nas.new_account_groups or []) if groups is None else groups)
    try:
        service_password = nas.service_password or ""
    except DecryptionError as error:
        raise ProvisioningError("error", f"{nas}: {error}") from None

    attempt = _Attempt(nas, name, email, service_password)
    try:
        with DSMClient(nas.base_url, nas.service_username, service_password, verify=nas.tls_verify,
                       timeout=timeout, deadline=deadline, session_name=PROVISION_SESSION) as dsm:
            account = attempt.run(dsm, listed, wanted_groups)
    except DSMError as error:
        raise attempt.failure(error) from None
    finally:
        attempt.forget_password()

    result = sync_nas(nas.pk, trigger=SYNC_TRIGGER, timeout=timeout, deadline=LISTING_DEADLINE,
                      lock_wait=LISTING_LOCK_WAIT)
    row = DSMAccount.objects.filter(nas=nas, name=account.name, present=True).first() if result.ok else None
    if row is None:
        reason = result.message if not result.ok else gettext("its listing does not show the account yet")
        message = gettext("“%(name)s” was created on %(nas)s but the NAS could not be listed (%(reason)s); try "
                          "again when it answers.") % {"name": account.name, "nas": nas, "reason": reason}
        log.warning("new DSM account %s on %s not listed: %s", account.name, nas.pk, reason)
        raise ProvisioningError("not_listed", attempt.scrub(message))
    if row.uid is None and account.uid is not None:
        # The listing may not carry uids (they come from `get`); reconcile keeps one it does not list.
        row.uid = account.uid
        row.save(update_fields=["uid"])
    record_event("sync", reason="account_created", nas_id=nas.pk, email=email, account=row.name,
                 adopted=attempt.adopted, groups=wanted_groups, display_name=display_name)
    log.info("DSM account %s %s on %s for %s", row.name, "adopted" if attempt.adopted else "created", nas.pk, email)
    return row


class _Attempt:
    """One provisioning conversation: what it has done so far (for the failure's message) and the
    generated password, which lives only here and only until the account is created."""

    def __init__(self, nas: NAS, name: str, email: str, service_password: str) -> None:
        self.nas = nas
        self.name = name
        self.email = email
        self.created = False
        self.adopted = False
        self._secrets = [service_password] if service_password else []

    def run(self, dsm: DSMClient, listed: DSMAccount | None, groups: list[str]) -> DSMUser:
        existing = dsm.get_user(listed.name) if listed is not None else None
        if existing is None:
            existing = self._create(dsm)
        if existing is not None:
            if not made_by_hub_for(existing.description, self.email):
                raise self._taken(existing.name, None)
            self.adopted = True
            self.name = existing.name
            log.info("adopting DSM account %s on %s: an earlier attempt created it for %s", existing.name,
                     self.nas.pk, self.email)
        dsm.join_groups(self.name, groups)
        seen = dsm.get_user(self.name)
        self._check(seen)
        assert seen is not None
        return seen

    def _create(self, dsm: DSMClient) -> DSMUser | None:
        """Create the account; None when created, or the existing account when the name is taken."""
        policy = dsm.password_policy()
        try:
            password = generate_password(policy, self.name)
        except ValueError as error:
            raise ProvisioningError("weak_password", gettext(
                "%(nas)s's password policy cannot be met (%(reason)s): relax it in DSM (Control Panel > User & "
                "Group > Advanced) and try again.") % {"nas": self.nas, "reason": error}) from None
        self._secrets.append(password)
        try:
            dsm.create_user(self.name, password, email=self.email, description=account_marker(self.email))
        except DSMApiError as error:
            if error.code != NAME_TAKEN:
                raise
            existing = dsm.get_user(self.name)
            if existing is None or not made_by_hub_for(existing.description, self.email):
                raise self._taken(existing.name if existing else self.name, error.code) from None
            return existing
        self.created = True
        log.info("created DSM account %s on %s for %s", self.name, self.nas.pk, self.email)
        return None

    def _check(self, seen: DSMUser | None) -> None:
        """What DSM reports must be what was asked: a create has been seen to half-work."""
        problem = None
        if seen is None:
            problem = gettext("DSM does not report it")
        elif seen.name != self.name:
            problem = gettext("DSM reports it as “%(name)s”") % {"name": seen.name}
        elif normalize_email(seen.email) != self.email:
            problem = gettext("DSM reports the email “%(email)s”") % {"email": seen.email}
        elif seen.expired:
            problem = gettext("DSM reports it as expired (it could not sign in); set it to never expire in DSM")
        if problem:
            raise ProvisioningError("error", self.scrub(gettext(
                "“%(name)s” on %(nas)s is not as the hub made it: %(problem)s.")
                % {"name": self.name, "nas": self.nas, "problem": problem}))

    def _taken(self, existing: str, code: int | None) -> ProvisioningError:
        where = gettext("“%(name)s” is already taken on %(nas)s by an account the hub did not create for %(email)s")
        message = where % {"name": existing, "nas": self.nas, "email": self.email}
        if code is not None:
            message += f" (DSM error {code})"
        return ProvisioningError("name_taken", message + ".", code)

    def failure(self, error: DSMError) -> ProvisioningError:
        """A DSM fault as a ProvisioningError; after the account exists, the message says a retry finishes it."""
        if isinstance(error, DSMUnreachable):
            outcome = "unreachable"
        elif isinstance(error, DSMAuthError):
            outcome = "no_permission" if error.code == 105 else "auth_failed"
        elif error.code == BAD_NAME:
            outcome = "bad_name"
        elif error.code == WEAK_PASSWORD:
            outcome = "weak_password"
        elif error.code == NAME_TAKEN:
            outcome = "name_taken"
        else:
            outcome = "error"
        values = {"name": self.name, "nas": self.nas, "reason": error, "user": self.nas.service_username,
                  "code": error.code}
        if self.created or self.adopted:
            message = gettext("“%(name)s” was created on %(nas)s, but the hub could not finish it (%(reason)s); try "
                              "again when the NAS answers: the retry finishes it.") % values
        elif outcome == "no_permission":
            message = gettext("The service account %(user)s may not create accounts on %(nas)s: it must be in DSM's "
                              "administrators group (DSM error 105).") % values
        elif outcome == "bad_name":
            message = gettext("%(nas)s refused the name “%(name)s” (DSM error %(code)s): choose another.") % values
        elif outcome == "weak_password":
            message = gettext("%(nas)s refused the generated password for “%(name)s” (DSM error %(code)s): its "
                              "password policy asks for more than the hub knows; relax it in DSM (Control Panel > "
                              "User & Group > Advanced) and try again.") % values
        else:
            message = gettext("Could not create “%(name)s” on %(nas)s: %(reason)s.") % values
        log.warning("DSM account %s on %s: %s: %s", self.name, self.nas.pk, outcome, error)
        return ProvisioningError(outcome, self.scrub(message), error.code)

    def scrub(self, message: str) -> str:
        """Defence in depth: no password ever reaches a message."""
        for secret in self._secrets:
            if secret and secret in message:
                message = message.replace(secret, "***")
        return message

    def forget_password(self) -> None:
        self._secrets = self._secrets[:1]
