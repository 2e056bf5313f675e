"""`manage.py demo`: the local demo set-up `make run` loads (idempotent; HUB_DEBUG=1 only).

Everything URL-shaped follows the current issuer (HUB_ISSUER, which `make run PORT=N` sets to
http://127.0.0.1:N): re-running it on another port moves the demo client's redirect URI there.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.services import MemberSpec, declare_household, declare_upstream, set_members
from identityhub.demo.views import DEMO_CLIENT_ID, demo_client_secret, demo_redirect_uri
from identityhub.oidc.services import register_client
from synology.models import DSMAccount
from synology.services import declare_nas


class Command(BaseCommand):
    help = "Load the demo household, mock upstream, NAS accounts and demo client (development only)."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("the demo set-up is for development only (HUB_DEBUG=1)")
        with transaction.atomic():
            declare_upstream("mock", "mock", name="Mock Google")
            household = declare_household("demo", "Demo family")
            set_members(household, [
                MemberSpec("alice@example.com", "Alice Example", "admin"),
                MemberSpec("bob@example.com", "Bob Example"),
                MemberSpec("carol@example.com", "Carol (no NAS account)"),
            ])
            nas = declare_nas("demo-nas", household=household, base_url="https://127.0.0.1:5001", name="Demo NAS",
                              enabled=False)
            now = timezone.now()
            from accounts.models import User

            for email, account in (("alice@example.com", "alice"), ("bob@example.com", "Bob.Builder")):
                DSMAccount.objects.update_or_create(
                    nas=nas, name=account,
                    defaults={"email": email, "user": User.objects.get(email=email), "linked_by": "email",
                              "present": True, "first_seen": now, "last_seen": now},
                )
            register_client(DEMO_CLIENT_ID, name="Demo DSM", redirect_uris=[demo_redirect_uri()],
                            client_secret=demo_client_secret(), nas=nas, skip_consent=True)
        self.stdout.write(f"Demo client {DEMO_CLIENT_ID}: redirect URI {demo_redirect_uri()}")
        self.stdout.write(f"Demo ready: open {settings.HUB_ISSUER}/demo/ and sign in as alice@example.com")
