"""Fixtures for the Synology sync tests: a real fake DSM over HTTP, a household, people, a NAS.

Fixture names are prefixed (`sync_*`, `fake_dsm`) so they never shadow the suite-wide ones.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.fakes.dsm import FakeDSM

SERVICE_USER = "hub-sync"
SERVICE_PASSWORD = "s3cret-Pa55word!"


@pytest.fixture
def fake_dsm():
    """A running DSM 7 fake (CSRF on). Every test ends with no DSM session left open."""
    fake = FakeDSM("dsm7", csrf=True)
    fake.accounts = {SERVICE_USER: fake.accounts["hub-sync"]}
    fake.start()
    yield fake
    fake.stop()
    assert fake.open_sessions == [], f"DSM sessions left open: {fake.open_sessions}"


@pytest.fixture
def sync_household(db):
    from accounts.models import Household

    return Household.objects.create(id="synchome", name="Sync home")


@pytest.fixture
def make_person(db):
    from accounts.models import User

    def make(email: str, *, active: bool = True):
        return User.objects.create_user(email, name=email.split("@")[0], is_active=active)

    return make


@pytest.fixture
def nas_ds923(fake_dsm, sync_household):
    from synology.services import declare_nas

    return declare_nas(
        "ds923",
        household=sync_household,
        base_url=fake_dsm.url,
        name="DS923+",
        service_username=SERVICE_USER,
        service_password=SERVICE_PASSWORD,
        sync_interval=timedelta(hours=1),
    )


def accounts_snapshot(nas) -> list[tuple]:
    """Every DSMAccount field of `nas`, for before/after comparisons."""
    from synology.models import DSMAccount

    return list(
        DSMAccount.objects.filter(nas=nas)
        .order_by("name")
        .values_list(
            "name", "uid", "email", "description", "expired", "present", "first_seen", "last_seen",
            "user_id", "linked_by", "link_note",
        )
    )
