"""`hub sync [NAS…]`: sync in the foreground (contract: ../shared/DESIGN.md, "Commands").

stdout: one line per NAS, `ds923: ok new=3 changed=1 unchanged=9996 absent=0 1.84s` or
`ds923: <outcome>: <reason>`; progress goes to stderr. Exit 0 when every NAS synced, 1 on a user
error (an unknown or a disabled NAS named: nothing is synced, stderr says which), 2 when any NAS failed
(a NAS without a service account included: `ds923: error: no service account: …`).
"""

from __future__ import annotations

from typing import Any

from .models import NAS
from .sync import sync_nas

LOCK_WAIT = 120.0  # seconds `hub sync` waits for a sync of the same NAS already running elsewhere


def run_sync(command: Any, options: dict[str, Any]) -> int:
    wanted: list[str] = list(dict.fromkeys(options.get("nas") or []))
    if wanted:
        known = set(NAS.objects.filter(pk__in=wanted).values_list("pk", flat=True))
        unknown = [nas_id for nas_id in wanted if nas_id not in known]
        if unknown:
            all_ids = ", ".join(NAS.objects.values_list("pk", flat=True)) or "none"
            command.stderr.write(f"unknown NAS: {', '.join(unknown)} (known: {all_ids})")
            return 1
        disabled = list(NAS.objects.filter(pk__in=wanted, enabled=False).values_list("pk", flat=True))
        if disabled:
            it = "it" if len(disabled) == 1 else "them"
            command.stderr.write(
                f"disabled NAS: {', '.join(disabled)}: enable {it} to sync {it} (admin, or `enabled: true` in the "
                "config); nothing synced"
            )
            return 1
        ids = wanted
    else:
        ids = list(NAS.objects.filter(enabled=True).values_list("pk", flat=True))
        if not ids:
            command.stderr.write("no enabled NAS to sync")
            return 0

    status = 0
    for nas_id in ids:
        def progress(message: str, nas_id: str = nas_id) -> None:
            command.stderr.write(f"{nas_id}: {message}")

        progress("starting")
        result = sync_nas(nas_id, trigger="manual", progress=progress, lock_wait=LOCK_WAIT)
        if result.outcome in ("busy", "disabled"):  # disabled: switched off since the check above
            result.outcome = "error"
        command.stdout.write(result.summary())
        if not result.ok:
            status = 2
    return status
