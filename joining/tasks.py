"""Mail to household admins about a new access request (only when HUB_EMAIL_URL is set)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse
from django.utils import translation

from accounts.selectors import household_admins

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def notify_admins(request_id: int) -> int:
    """Mail the admins of the request's household; returns how many were written to."""
    from .models import AccessRequest

    access_request = AccessRequest.objects.select_related("household").filter(pk=request_id).first()
    if access_request is None or access_request.state != AccessRequest.State.OPEN or not settings.HUB_EMAIL_ENABLED:
        return 0
    recipients = [c.email for c in household_admins([access_request.household_id]) if c.email]
    if not recipients:
        return 0
    link = f"{settings.HUB_ISSUER.rstrip('/')}{reverse('admin:joining_accessrequest_change', args=[request_id])}"
    with translation.override(settings.LANGUAGE_CODE):
        who = f"{access_request.name} <{access_request.email}>" if access_request.name else access_request.email
        app = access_request.client_id or str(access_request.household)
        subject = f"{who} asks for access to {app}"
        body = (f"{who} asks to be let in to {access_request.household} ({app}).\n\n"
                f"Approve or decline it in the console:\n{link}\n\n"
                "Nothing is created for them until you approve.\n")
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except OSError:  # the mail server is down: the console still shows the request
        log.warning("could not mail the admins of %s about access request %s", access_request.household_id,
                    request_id, exc_info=True)
        return 0
    return len(recipients)
