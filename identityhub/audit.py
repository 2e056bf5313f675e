"""The one way to write an audit event. Never pass secrets in `details`."""

from __future__ import annotations

import logging
from typing import Any

from . import metrics
from .models import AuditEvent

log = logging.getLogger("identityhub.audit")


def record_event(
    kind: str,
    *,
    reason: str = "",
    user=None,
    email: str = "",
    client_id: str = "",
    nas_id: str = "",
    upstream_id: str = "",
    **details: Any,
) -> AuditEvent:
    event = AuditEvent.objects.create(
        kind=kind,
        reason=reason,
        user=user,
        email=email,
        client_id=client_id,
        nas_id=nas_id,
        upstream_id=upstream_id,
        details=details,
    )
    metrics.count_event(kind, reason, client_id, upstream_id, details)  # one counter increment (/metrics)
    log.info("audit %s %s user=%s client=%s nas=%s", kind, reason, getattr(user, "email", email), client_id, nas_id)
    return event
