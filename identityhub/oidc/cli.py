"""`hub claims` and `hub keys`."""

from __future__ import annotations

import json

from oauth2_provider.models import Application

from accounts.models import User, normalize_email

from .claims import build_claims
from .policy import check_access


def run_claims(command, options) -> int:
    user = User.objects.filter(email=normalize_email(options["email"])).first()
    if user is None:
        command.stderr.write(f"no person with email {options['email']}")
        return 1
    application = Application.objects.filter(client_id=options["client_id"]).first()
    if application is None:
        command.stderr.write(f"no client {options['client_id']}")
        return 1
    decision = check_access(user, application)
    if not decision.allowed:
        command.stderr.write(f"refused ({decision.refusal.reason}): {decision.refusal.message}")
        return 1
    from django.conf import settings

    scopes = (options.get("scope") or " ".join(settings.OAUTH2_PROVIDER["SCOPES"])).split()
    claims = build_claims(user, decision, scopes, application)
    command.stdout.write(json.dumps(claims, sort_keys=True, indent=2, ensure_ascii=False))
    return 0


def run_keys(command, options) -> int:
    from .keys import keyring

    if options["action"] == "list":
        for key in keyring().published:
            command.stdout.write(key.get("kid"))
        return 0
    command.stderr.write("keys rotate is not implemented yet")
    return 1
