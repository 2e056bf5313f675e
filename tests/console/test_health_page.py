"""The console's Health checks: the doctor's checks on demand (POST), never on a page load; scoped."""

from __future__ import annotations

import re

import pytest

from tests.conftest import signed_in
from tests.fakes.dsm import FakeDSM


@pytest.fixture
def fake_dsm():
    fake = FakeDSM("dsm7")
    fake.add_user("mael.valais", email="mael@example.com")
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def two_nases(fake_dsm, household, other_household, people):
    from synology.services import declare_nas

    for nas_id, home in (("ds923", household), ("ds220", other_household)):
        declare_nas(nas_id, household=home, base_url=fake_dsm.url, service_username="hub-sync",
                    service_password="s3cret-Pa55word!")


def rows(response) -> list[tuple[str, str, str]]:
    """(status, what, badge) of each check line on the page."""
    html = response.content.decode()
    return [(status, what, badge) for status, badge, what in re.findall(
        r'<tr class="hub-check" data-status="(\w+)">\s*<td><span class="hub-badge [\w-]+">([^<]+)</span></td>\s*'
        r'<th scope="row">([^<]+)</th>', html)]


@pytest.fixture
def no_checks(monkeypatch):
    from identityhub.oidc import doctor

    def refuse(**kwargs):
        raise AssertionError("the checks ran on a page load")

    monkeypatch.setattr(doctor, "run_checks", refuse)
    monkeypatch.setattr("console.health.run_checks", refuse)


def test_the_dashboard_offers_the_checks_without_running_them(client, mael, two_nases, no_checks):
    signed_in(client, mael)
    html = client.get("/admin/").content.decode()
    assert '<form method="post" action="/admin/health/"' in html
    assert 'id="run-health-checks"' in html and "Run the checks" in html


def test_the_page_itself_runs_nothing_until_asked(client, mael, two_nases, no_checks):
    signed_in(client, mael)
    response = client.get("/admin/health/")
    assert response.status_code == 200
    assert 'id="run-checks"' in response.content.decode()
    assert rows(response) == []


def test_a_household_admin_gets_their_own_nases_checks_only(client, mael, two_nases):
    signed_in(client, mael)
    response = client.post("/admin/health/")
    assert response.status_code == 200
    assert rows(response) == [("ok", "nas ds923", "ok")]
    html = response.content.decode()
    assert "ds220" not in html and "s3cret-Pa55word!" not in html
    assert "DSM 7.2.2-72806 Update 3; signed in as hub-sync, who may list users (1 local account)" in html


@pytest.mark.django_db(transaction=True)
def test_an_operator_gets_every_check_with_badges(client, hub, two_nases, fake_dsm, upstream_provider):
    from accounts.models import User
    from tests.conftest import declare_fake_upstream

    declare_fake_upstream("google", upstream_provider, "Google")
    operator = User.objects.create_superuser("root@example.net", name="Op Erator")
    fake_dsm.accounts["hub-sync"].admin = False  # may not list users: DSM's 105
    signed_in(client, operator)
    response = client.post("/admin/health/")
    found = rows(response)
    whats = [what for _, what, _ in found]
    assert whats[:1] == ["database"]
    assert {"issuer", "tls", "upstream google", "clock", "nas ds220", "nas ds923", "signing key"} <= set(whats)
    assert ("warn", "tls", "warning") in found
    assert ("fail", "nas ds923", "failed") in found and ("ok", "issuer", "ok") in found
    assert "Something needs fixing" in response.content.decode()


def test_members_cannot_open_it(client, mum, no_checks):
    signed_in(client, mum)
    response = client.post("/admin/health/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
