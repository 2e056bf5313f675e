"""Reads of synced NAS data used at sign-in (never waits on a NAS unless allowed to)."""

from __future__ import annotations

from django.db.models import Case, IntegerField, QuerySet, Value, When

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
