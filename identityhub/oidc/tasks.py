"""Celery tasks of the provider (thin: the work lives in identityhub.oidc.backchannel)."""

from __future__ import annotations

import logging

from celery import shared_task

from . import backchannel

log = logging.getLogger(__name__)


@shared_task(bind=True, ignore_result=True, max_retries=len(backchannel.RETRY_COUNTDOWNS))
def send_logout_token(self, client_id: str, *, sub: str, sid: str, user_id: int | None, reason: str) -> str:
    """POST one logout token to a client (Back-Channel Logout 1.0). A network error, timeout, 5xx or
    429 is retried after 10 s, 60 s and 300 s; the final outcome is recorded in the audit trail."""
    result = backchannel.deliver(client_id, sub=sub, sid=sid)
    attempt = self.request.retries + 1
    if result.retry and self.request.retries < self.max_retries:
        log.info("back-channel logout to %s: attempt %d failed (%s), retrying", client_id, attempt, result.detail)
        raise self.retry(countdown=backchannel.RETRY_COUNTDOWNS[self.request.retries])
    if result.outcome != "skipped":
        backchannel.record_delivery(result, client_id=client_id, user_id=user_id, reason=reason, attempts=attempt)
    return result.outcome
