"""Loopback names and addresses, for keeping development mode (HUB_DEBUG=1) on this machine.

Dependency-free: settings.py imports it.
"""

from __future__ import annotations

import ipaddress

# Development mode lets anyone sign in as anyone (the mock upstream); this setting lets it off loopback.
DEBUG_REMOTE_OVERRIDE = "HUB_DEBUG_ALLOW_REMOTE_I_UNDERSTAND_ANYONE_CAN_SIGN_IN"
DEBUG_REMOTE_WARNING = (
    f"{DEBUG_REMOTE_OVERRIDE}=1 with HUB_DEBUG=1: ANYONE WHO CAN REACH THIS HUB CAN SIGN IN AS ANY PERSON "
    "(the mock upstream), and the hub may listen beyond loopback. Never do this on a network you do not trust."
)


def is_loopback_host(host: str | None) -> bool:
    """`localhost`, or a loopback IP address (127.0.0.0/8, ::1; brackets allowed). A name other than
    localhost is not loopback: it may resolve to anything."""
    if not host:
        return False
    host = host.strip().strip("[]").lower()
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def remote_debug_client(request) -> bool:
    """True when `request` comes from off this machine and the override is not set: the mock
    upstream's views refuse it (defence in depth behind the issuer and bind checks). Behind a local
    proxy every client is the proxy's loopback address: that setup needs the override anyway."""
    from django.conf import settings

    if getattr(settings, "HUB_DEBUG_ALLOW_REMOTE", False):
        return False
    return not is_loopback_host(request.META.get("REMOTE_ADDR"))
