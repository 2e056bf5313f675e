"""Writes to NAS data: declaring NASes and explicit account mappings. The sync lives in synology.sync."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction

from .models import NAS, AccountMapping


def declare_nas(
    nas_id: str,
    *,
    household,
    base_url: str,
    name: str = "",
    verify_tls: bool = True,
    ca_file: str = "",
    service_username: str = "",
    service_password: str = "",
    sync_interval: timedelta = timedelta(hours=1),
    enabled: bool = True,
    managed: bool = False,
) -> NAS:
    nas, _ = NAS.objects.update_or_create(
        pk=nas_id,
        defaults={
            "household": household,
            "base_url": base_url.rstrip("/"),
            "name": name,
            "verify_tls": verify_tls,
            "ca_file": ca_file,
            "service_username": service_username,
            "service_password": service_password,
            "sync_interval": sync_interval,
            "enabled": enabled,
            "managed": managed,
        },
    )
    return nas


@transaction.atomic
def set_account_mappings(nas: NAS, mappings: dict[str, str], *, managed: bool = False) -> None:
    """Make the NAS's explicit mappings exactly `mappings` (email -> DSM account name)."""
    wanted = {email.strip().lower(): name for email, name in mappings.items()}
    current = {m.email: m for m in AccountMapping.objects.filter(nas=nas)}
    for email, mapping in current.items():
        if email not in wanted:
            mapping.delete()
        elif mapping.account_name != wanted[email] or mapping.managed != managed:
            mapping.account_name = wanted[email]
            mapping.managed = managed
            mapping.save(update_fields=["account_name", "managed"])
    AccountMapping.objects.bulk_create(
        [AccountMapping(nas=nas, email=e, account_name=n, managed=managed) for e, n in wanted.items() if e not in current]
    )


def quick_sync(nas: NAS) -> bool:
    """One short on-demand sync before refusing a sign-in; True when it ran and succeeded.

    Placeholder until the sync lands (issue 3).
    """
    return False
