"""`manage.py runserver`, refusing a non-loopback address in development mode.

HUB_DEBUG=1 lets anyone who can reach the hub sign in as any person (the mock upstream), so the
development server listens on loopback only (`make run` binds 127.0.0.1) unless
HUB_DEBUG_ALLOW_REMOTE_I_UNDERSTAND_ANYONE_CAN_SIGN_IN=1. Django's runserver address is not a
setting, so the check lives here. Subclasses staticfiles' runserver (it serves static files in
development); `identityhub` is listed before `django.contrib.staticfiles` so this command wins.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.staticfiles.management.commands.runserver import Command as StaticfilesRunserver
from django.core.management import CommandError

from identityhub.loopback import DEBUG_REMOTE_OVERRIDE, is_loopback_host


def bind_refusal(addr: str, *, debug: bool, allow_remote: bool) -> str | None:
    """Why runserver must not listen on `addr`, or None when it may."""
    if not debug or allow_remote or is_loopback_host(addr):
        return None
    shown = "0.0.0.0" if addr == "0" else addr  # noqa: S104  (a message, not a bind)
    return (
        f"HUB_DEBUG=1 lets anyone who reaches the hub sign in as any person: runserver listens on loopback "
        f"only (127.0.0.1, ::1, localhost), not {shown}. Run `make run` or `runserver 127.0.0.1:8000`; to "
        f"listen on {shown} anyway, set {DEBUG_REMOTE_OVERRIDE}=1."
    )


class Command(StaticfilesRunserver):
    def run(self, **options):
        refusal = bind_refusal(self.addr, debug=settings.DEBUG,
                               allow_remote=getattr(settings, "HUB_DEBUG_ALLOW_REMOTE", False))
        if refusal:
            raise CommandError(refusal)
        return super().run(**options)
