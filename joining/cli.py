"""`hub invite` and `hub requests` (contract: ../shared/DESIGN.md, "Contract extensions").

- `invite EMAIL --household ID [--name N] [--role member|admin] [--nas ID (--account NAME |
  --create-account NAME)] [--expires 7d]`: the invitation URL alone on stdout; exit 0, or 1 on a
  user error (the reason on stderr, nothing made).
- `requests`: the open access requests, one a line: `ID EMAIL HOUSEHOLD CLIENT AGE` (CLIENT `-`
  when the request names no app; AGE `45m`, `3h`, `2d`).
- `requests approve ID [--account NAME | --create-account NAME]` / `requests decline ID`: one line
  saying what was done; exit 0, or 1 when nothing was done, with the reason on stderr.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Household
from synology.models import NAS
from synology.provisioning import check_new_account_name

from . import services
from .models import AccessRequest

Choice = services.AccountChoice | None


def _account_choice(command: Any, options: dict[str, Any], nas: NAS | None, email: str,
                    without_nas: str) -> tuple[bool, Choice]:
    """(ok, choice) from --account / --create-account; a problem is written to stderr. A new
    account's name is checked before anything else (the NAS is not contacted for a bad one)."""
    link, create = options.get("account") or "", options.get("create_account") or ""
    if link and create:
        command.stderr.write(_("--account and --create-account cannot be used together."))
        return False, None
    if not (link or create):
        return True, None
    if nas is None:
        command.stderr.write(without_nas)
        return False, None
    if create:
        problem = check_new_account_name(nas, create, email=email)
        if problem:
            command.stderr.write(problem)
            return False, None
    return True, services.AccountChoice(nas, link=link, create=create)


def run_invite(command: Any, options: dict[str, Any]) -> int:
    household = Household.objects.filter(pk=options["household"]).first()
    if household is None:
        known = ", ".join(Household.objects.order_by("pk").values_list("pk", flat=True)) or "-"
        command.stderr.write(_("unknown household: %(id)s (known: %(known)s)") % {"id": options["household"],
                                                                                "known": known})
        return 1
    nas = None
    if options.get("nas"):
        nas = NAS.objects.filter(pk=options["nas"]).first()
        if nas is None:
            command.stderr.write(_("unknown NAS: %(id)s") % {"id": options["nas"]})
            return 1
    ok, account = _account_choice(command, options, nas, options["email"],
                                  _("--account and --create-account need --nas ID."))
    if not ok:
        return 1
    if nas is not None and account is None:
        command.stderr.write(_("--nas needs --account NAME (an existing account) or --create-account NAME."))
        return 1
    try:
        lifetime = services.parse_lifetime(options.get("expires") or "7d")
        _invitation, url = services.invite(household, options["email"], name=options.get("name") or "",
                                           role=options.get("role") or "member", account=account,
                                           lifetime=lifetime)
    except services.JoiningError as error:
        command.stderr.write(str(error))
        return 1
    command.stdout.write(url)
    return 0


def age(delta: timedelta) -> str:
    """`45m`, `3h`, `2d`: the largest whole unit."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds >= 86400:
        return f"{seconds // 86400}d"
    if seconds >= 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


def run_requests(command: Any, options: dict[str, Any]) -> int:
    action = options.get("action")
    if action in ("approve", "decline"):
        return _decide(command, options, action)
    now = timezone.now()
    for request in AccessRequest.objects.filter(state=AccessRequest.State.OPEN).order_by("created_at", "pk"):
        command.stdout.write(f"{request.pk} {request.email} {request.household_id} {request.client_id or '-'} "
                             f"{age(now - request.created_at)}")
    return 0


def _decide(command: Any, options: dict[str, Any], action: str) -> int:
    wanted = str(options["id"])
    request = None
    if wanted.isascii() and wanted.isdigit():
        request = AccessRequest.objects.select_related("nas", "household").filter(pk=int(wanted)).first()
    if request is None:
        command.stderr.write(_("no access request %(id)s") % {"id": options["id"]})
        return 1
    try:
        if action == "decline":
            done = services.decline_request(request)
        else:
            ok, account = _account_choice(command, options, request.nas, request.email, _(
                "This app is not bound to a NAS: there is no account to choose."))
            if not ok:
                return 1
            done = services.approve_request(request, account=account)
    except services.JoiningError as error:
        command.stderr.write(_("nothing done: %(reason)s") % {"reason": error})
        return 1
    command.stdout.write(done)
    return 0
