"""Reads of synced NAS data used at sign-in (never waits on a NAS unless allowed to)."""

from __future__ import annotations

from .models import NAS, DSMAccount


def dsm_username_for(nas: NAS, user, *, allow_quick_sync: bool = False) -> str | None:
    """The person's account name on `nas`, exactly as DSM lists it; None when they have none.

    Explicit links win over email links. With `allow_quick_sync`, a miss may trigger one
    quick on-demand sync of the NAS (see synology.services.quick_sync) before giving up.
    """
    name = _linked_account_name(nas, user)
    if name is None and allow_quick_sync:
        from .services import quick_sync

        if quick_sync(nas):
            name = _linked_account_name(nas, user)
    return name


def _linked_account_name(nas: NAS, user) -> str | None:
    names = list(
        DSMAccount.objects.filter(nas=nas, user=user, present=True, expired=False)
        .values_list("name", "linked_by")
    )
    if not names:
        return None
    preference = {DSMAccount.LinkedBy.EXPLICIT: 0, DSMAccount.LinkedBy.ADMIN: 1, DSMAccount.LinkedBy.EMAIL: 2}
    names.sort(key=lambda row: (preference.get(row[1], 3), row[0]))
    return names[0][0]
