"""The admin: every page renders for a household admin, secrets never appear, DSM values are shown."""

import pytest
from django.urls import reverse

from tests.conftest import DSM_SECRET, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, mael):
    return signed_in(client, mael)


@pytest.fixture
def operator_client(client, db):
    """Upstreams are hub-wide: an operator's (DESIGN.md "Roles")."""
    from accounts.models import User

    return signed_in(client, User.objects.create_superuser("op@example.com"))


def test_every_changelist_renders(client, admin_client, dsm_client, google_like):
    from django.contrib import admin

    from accounts.models import User

    operator = signed_in(client.__class__(), User.objects.create_superuser("op@example.com"))
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert operator.get(url).status_code == 200, url
        assert admin_client.get(url).status_code in (200, 403), url  # household admin: theirs, or not at all


def test_the_app_page_shows_the_dsm_settings_and_no_secret(admin_client, dsm_client, settings):
    url = reverse("admin:oauth2_provider_application_change", args=[dsm_client.pk])
    page = admin_client.get(url).content.decode()
    assert f"{settings.HUB_ISSUER}/.well-known/openid-configuration" in page
    assert "ds923-dsm" in page and "Username claim" in page
    assert DSM_SECRET not in page and "hub_client_sha256" not in page


def test_upstream_secret_is_write_only(operator_client, google_like, upstream_provider):
    admin_client = operator_client
    url = reverse("admin:accounts_upstream_change", args=["google"])
    assert upstream_provider.client_secret not in admin_client.get(url).content.decode()
    form = {"id": "google", "type": "oidc", "name": "Google", "issuer": upstream_provider.issuer,
            "client_id": "changed", "client_secret": "", "allowed_domains": "[]", "enabled": "on", "position": "0"}
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content[:2000]
    google_like.refresh_from_db()
    assert google_like.client_id == "changed"
    assert google_like.client_secret == upstream_provider.client_secret  # empty field kept it


def test_admin_changes_are_audited(operator_client, google_like, upstream_provider):
    admin_client = operator_client
    from identityhub.models import AuditEvent

    url = reverse("admin:accounts_upstream_change", args=["google"])
    admin_client.post(url, {"id": "google", "type": "oidc", "name": "G", "issuer": upstream_provider.issuer,
                            "client_id": "x", "client_secret": "", "allowed_domains": "[]", "enabled": "on",
                            "position": "0"})
    assert AuditEvent.objects.filter(kind="admin_change", details__model="upstream").exists()


def _application_form(admin_client, url):
    page = admin_client.get(url)
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = "on" if value is True else value
    return data


def test_the_application_admin_takes_no_secret_it_generates_one(admin_client, nas):
    from django.contrib.auth.hashers import check_password
    from oauth2_provider.models import Application

    url = reverse("admin:oauth2_provider_application_add")
    data = {**_application_form(admin_client, url), "client_id": "weak", "name": "Weak", "client_type": "confidential",
            "redirect_uris": "https://app.example.com/cb", "nas": "ds923", "client_secret": "password123"}
    response = admin_client.post(url, data)
    assert response.status_code == 200 and b"will not be shown again" in response.content
    stored = Application.objects.get(client_id="weak").client_secret
    assert not check_password("password123", stored)


def test_making_a_public_client_confidential_in_the_admin_generates_a_secret(admin_client, public_client):
    from oauth2_provider.models import Application

    url = reverse("admin:oauth2_provider_application_change", args=[public_client.pk])
    data = {**_application_form(admin_client, url), "client_type": "confidential"}
    response = admin_client.post(url, data)
    assert response.status_code == 200 and b"will not be shown again" in response.content
    assert Application.objects.get(pk=public_client.pk).client_type == "confidential"


def test_editing_a_confidential_client_in_the_admin_keeps_its_secret(admin_client, dsm_client, client):
    from oauth2_provider.models import Application

    stored = Application.objects.get(pk=dsm_client.pk).client_secret
    url = reverse("admin:oauth2_provider_application_change", args=[dsm_client.pk])
    response = admin_client.post(url, {**_application_form(admin_client, url), "name": "Renamed"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    application = Application.objects.get(pk=dsm_client.pk)
    assert application.client_secret == stored and application.name == "Renamed"
