"""Reads of synced NAS data used at sign-in (never waits on a NAS unless allowed to)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils import timezone
from django.utils.formats import time_format
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import NAS, DSMAccount


def linked_account_names(nas_id: str, user_id: int) -> QuerySet:
    """Names of the person's usable accounts on a NAS, best first: explicit, admin, then email links."""
    return (
        DSMAccount.objects.filter(nas_id=nas_id, user_id=user_id, present=True, expired=False)
        .annotate(preference=Case(
            When(linked_by=DSMAccount.LinkedBy.EXPLICIT, then=Value(0)),
            When(linked_by=DSMAccount.LinkedBy.ADMIN, then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        ))
        .order_by("preference", "name")
        .values("name")
    )


def dsm_username_for(nas: NAS, user, *, allow_quick_sync: bool = False) -> str | None:
    """The person's account name on `nas`, exactly as DSM lists it; None when they have none.

    With `allow_quick_sync`, a miss may trigger one quick on-demand sync of the NAS (see
    synology.services.quick_sync) before giving up.
    """
    name = linked_account_names(nas.pk, user.pk).values_list("name", flat=True).first()
    if name is None and allow_quick_sync:
        from .services import quick_sync

        if quick_sync(nas):
            name = linked_account_names(nas.pk, user.pk).values_list("name", flat=True).first()
    return name


#: The NAS statuses as the health line says them (the model's labels are the English ones).
STATUS_WORDS = {
    NAS.Status.OK: gettext_lazy("ok"),
    NAS.Status.UNREACHABLE: gettext_lazy("unreachable"),
    NAS.Status.AUTH_FAILED: gettext_lazy("authentication failed"),
    NAS.Status.ERROR: gettext_lazy("error"),
}


def sync_health(nas: NAS, now: datetime | None = None) -> str:
    """One line a person reads at a glance: "ok 4 min ago", "unreachable since 23:10, next try 23:40"."""
    now = now or timezone.now()
    if not nas.enabled:
        return _("disabled")
    if nas.last_status == NAS.Status.NEVER:
        return _("never synced")
    if nas.last_status == NAS.Status.OK and nas.last_success_at:
        if (now - nas.last_success_at).total_seconds() < 60:
            return _("ok just now")
        return _("ok %(ago)s ago") % {"ago": timesince(nas.last_success_at, now, depth=1)}
    status = str(STATUS_WORDS.get(nas.last_status) or nas.get_last_status_display())
    since = nas.failing_since or nas.last_attempt_at
    line = status
    if since:
        line = _("%(status)s since %(time)s") % {"status": status, "time": _clock(since)}
    if nas.next_sync_at:
        line += ", " + _("next try %(time)s") % {"time": _clock(nas.next_sync_at)}
    return line


def _clock(value: datetime) -> str:
    local = timezone.localtime(value)
    if local.date() == timezone.localdate():
        return time_format(local, "H:i")
    return local.strftime("%Y-%m-%d %H:%M")
