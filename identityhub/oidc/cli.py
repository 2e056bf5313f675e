"""`hub claims` and `hub keys`."""

from __future__ import annotations

import json

from django.conf import settings
from oauth2_provider.models import Application

from accounts.models import User, normalize_email

from .claims import preview_claims


def run_claims(command, options) -> int:
    user = User.objects.filter(email=normalize_email(options["email"])).first()
    if user is None:
        command.stderr.write(f"no person with email {options['email']}")
        return 1
    application = Application.objects.filter(client_id=options["client_id"]).first()
    if application is None:
        command.stderr.write(f"no client {options['client_id']}")
        return 1
    scope = options.get("scope")
    preview = preview_claims(user, application, scope.split() if scope else None)
    if not preview.allowed:
        command.stderr.write(f"refused ({preview.refusal.reason}): {preview.refusal.message}")
        return 1
    command.stdout.write(json.dumps(preview.userinfo, sort_keys=True, indent=2, ensure_ascii=False))
    return 0


def run_keys(command, options) -> int:
    """`hub keys list`: published key ids and their state; `hub keys rotate`: a new signing key.
    Private keys are never printed."""
    from . import keys

    if options["action"] == "rotate":
        key = keys.rotate()
        command.stdout.write(f"{key.kid}: active (the previous key stays published for "
                             f"{settings.HUB_KEY_RETIREMENT_SECONDS // 3600} h)")
        return 0
    active = keys.ensure_active_key()
    command.stdout.write(f"{active.kid}: active since {active.created:%Y-%m-%d %H:%M}")
    for key in keys.retiring_keys():
        command.stdout.write(f"{key.kid}: retiring since {key.retired_at:%Y-%m-%d %H:%M}")
    return 0
