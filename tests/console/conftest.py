"""Console fixtures: two households on one hub, each with its admin and its NAS.

`mael` administers "valais" (NAS ds923, app ds923-dsm); `neighbour` (outsider@example.org)
administers "neighbours" (NAS ds220 with a DSM `admin` account). `operator` runs the hub.
"""

from __future__ import annotations

import pytest

from tests.conftest import signed_in


@pytest.fixture
def neighbour(people, other_household):
    from accounts.models import Membership

    Membership.objects.filter(household=other_household, user=people["outsider"]).update(role="admin")
    return people["outsider"]


@pytest.fixture
def neighbour_nas(other_household, neighbour):
    from django.utils import timezone

    from synology.models import DSMAccount
    from synology.services import declare_nas

    nas = declare_nas("ds220", household=other_household, base_url="https://192.0.2.20:5001", name="DS220",
                      service_username="hub-sync", service_password="neighbours-password")
    DSMAccount.objects.create(nas=nas, name="admin", email="", first_seen=timezone.now(), last_seen=timezone.now())
    return nas


@pytest.fixture
def operator(db):
    from accounts.models import User

    return User.objects.create_superuser("root@example.net", name="Op Erator")


@pytest.fixture
def mael_console(client, mael):
    return signed_in(client, mael)


@pytest.fixture
def neighbour_console(neighbour, neighbour_nas):
    from django.test import Client

    return signed_in(Client(), neighbour)
