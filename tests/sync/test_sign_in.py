"""Sign-in meets the sync: claims come from the synced table; a miss may trigger one quick sync."""

import pytest

from accounts.models import Membership
from identityhub.oidc.services import register_client
from tests.conftest import DSM_SECRET, RP_REDIRECT, authorize_query, exchange, get_code, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def newcomer(nas_ds923, make_person, sync_household):
    person = make_person("new@example.com")
    Membership.objects.create(user=person, household=sync_household)
    register_client("ds923-dsm", redirect_uris=[RP_REDIRECT], client_secret=DSM_SECRET, nas=nas_ds923,
                    skip_consent=True)
    return person


def test_a_new_dsm_user_signs_in_at_once_through_a_quick_sync(client, newcomer, fake_dsm):
    fake_dsm.add_user("NewBie", email="New@Example.com")  # created on the NAS after the last sync
    signed_in(client, newcomer)
    code = get_code(client, "ds923-dsm")
    tokens = exchange(client, "ds923-dsm", code, DSM_SECRET).json()
    userinfo = client.get("/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").json()
    assert userinfo["username"] == "NewBie"


def test_a_sleeping_nas_does_not_block_sign_in_for_long_and_refuses_clearly(client, newcomer, fake_dsm):
    fake_dsm.stop()  # the NAS sleeps: connection refused
    signed_in(client, newcomer)
    response = client.get(authorize_query("ds923-dsm"))
    assert response.status_code == 403
    assert b"has no account on" in response.content
