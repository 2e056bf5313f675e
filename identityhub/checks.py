"""The hub's own system checks (registered in IdentityHubConfig.ready).

Development mode (HUB_DEBUG=1) lets anyone who reaches the hub sign in as any person through the
mock upstream. Settings refuse a non-loopback issuer in debug, runserver a non-loopback address, the
image's entrypoint gunicorn on all interfaces, the mock views a non-loopback client — unless
HUB_DEBUG_ALLOW_REMOTE_I_UNDERSTAND_ANYONE_CAN_SIGN_IN=1; these checks say so whenever it is set.
"""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from .loopback import DEBUG_REMOTE_OVERRIDE, DEBUG_REMOTE_WARNING


@checks.register(checks.Tags.security)
def debug_exposure(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """identityhub.W001 while the override is in effect (shown by runserver, migrate, check …)."""
    if not (settings.DEBUG and getattr(settings, "HUB_DEBUG_ALLOW_REMOTE", False)):
        return []
    return [checks.Warning(DEBUG_REMOTE_WARNING, id="identityhub.W001",
                           hint=f"Unset {DEBUG_REMOTE_OVERRIDE} and serve on 127.0.0.1 (make run).")]
