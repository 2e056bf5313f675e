"""The admin of the household next door reaches none of valais's objects — not in lists, change,
delete and history pages, actions, autocompletes, filters or foreign-key choices — and rights
follow the memberships at once, whatever path changed them."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

FORBIDDEN = {302, 403, 404}


def valais_objects(nas, dsm_client, mael, household):
    """(admin url name prefix, pk) of one object of each scoped model, all belonging to valais."""
    from accounts.models import Membership
    from identityhub.audit import record_event
    from synology.models import AccountMapping, DSMAccount, SyncRun

    mapping = AccountMapping.objects.create(nas=nas, email="mum@example.com", account_name="maman")
    from django.utils import timezone

    run = SyncRun.objects.create(nas=nas, started=timezone.now(), outcome="ok")
    event = record_event("refusal", reason="no_nas_account", client_id=dsm_client.client_id, nas_id=nas.pk,
                         email="someone@example.com")
    return {
        "accounts_household": household.pk,
        "accounts_user": mael.pk,
        "synology_nas": nas.pk,
        "synology_dsmaccount": DSMAccount.objects.get(nas=nas, name="mael.valais").pk,
        "synology_accountmapping": mapping.pk,
        "synology_syncrun": run.pk,
        "identityhub_auditevent": event.pk,
        "oauth2_provider_application": dsm_client.pk,
        "_membership": Membership.objects.get(user=mael, household=household).pk,
    }


@pytest.fixture
def valais(nas, dsm_client, mael, household):
    return valais_objects(nas, dsm_client, mael, household)


@pytest.mark.parametrize("model", [
    "accounts_household", "accounts_user", "synology_nas", "synology_dsmaccount", "synology_accountmapping",
    "synology_syncrun", "identityhub_auditevent", "oauth2_provider_application",
])
def test_the_neighbour_cannot_list_open_delete_or_read_history(neighbour_console, mael_console, valais, model):
    pk = valais[model]
    changelist = neighbour_console.get(reverse(f"admin:{model}_changelist"))
    assert changelist.status_code == 200
    assert f"/{pk}/change/" not in changelist.content.decode()
    for view in ("change", "delete", "history"):
        url = reverse(f"admin:{model}_{view}", args=[pk])
        assert neighbour_console.get(url).status_code == 404, url
        assert neighbour_console.post(url, {"post": "yes"}).status_code in {403, 404}, url
    # The household's own admin does reach it (so the 404 above is the scope, not a broken page).
    assert mael_console.get(reverse(f"admin:{model}_change", args=[pk])).status_code == 200
    assert f"/{pk}/change/" in mael_console.get(reverse(f"admin:{model}_changelist")).content.decode()


def test_nothing_of_valais_survives_a_neighbours_post(neighbour_console, valais, nas):
    """The attack of issue 7: point ds923 at a listener, then link its accounts to oneself."""
    from synology.models import NAS, DSMAccount

    url = reverse("admin:synology_nas_change", args=[nas.pk])
    response = neighbour_console.post(url, {"name": "mine", "household": "neighbours",
                                            "base_url": "https://198.51.100.7:5001", "service_username": "x"})
    assert response.status_code == 404
    assert NAS.objects.get(pk=nas.pk).base_url == "https://192.0.2.10:5001"
    account = DSMAccount.objects.get(pk=valais["synology_dsmaccount"])
    response = neighbour_console.post(reverse("admin:synology_dsmaccount_change", args=[account.pk]), {"user": ""})
    assert response.status_code == 404
    account.refresh_from_db()
    assert account.user.email == "mael@example.com"


def test_actions_only_act_on_the_admins_own_objects(neighbour_console, valais, nas, neighbour_nas):
    from identityhub.models import AuditEvent

    before = AuditEvent.objects.filter(reason="test_connection").count()
    changelist = reverse("admin:synology_nas_changelist")
    neighbour_console.post(changelist, {"action": "test_connection", "_selected_action": [nas.pk]})
    assert not AuditEvent.objects.filter(reason="test_connection", nas_id=nas.pk).exists()
    for tool in ("test", "sync"):
        assert neighbour_console.post(f"/admin/synology/nas/{nas.pk}/{tool}/").status_code == 404
    assert AuditEvent.objects.filter(reason="test_connection").count() == before


def test_foreign_key_choices_and_filters_list_only_the_admins_households(neighbour_console, valais, neighbour_nas):
    page = neighbour_console.get(reverse("admin:synology_nas_add")).content.decode()
    assert 'value="neighbours"' in page and 'value="valais"' not in page
    from synology.models import DSMAccount

    account = DSMAccount.objects.get(nas=neighbour_nas, name="admin")
    page = neighbour_console.get(reverse("admin:synology_dsmaccount_change", args=[account.pk])).content.decode()
    assert "outsider@example.org" in page and "mael@example.com" not in page and "mum@example.com" not in page
    # Django's own related filters would list every household and NAS.
    page = neighbour_console.get(reverse("admin:synology_nas_changelist")).content.decode()
    assert "Valais family" not in page
    page = neighbour_console.get(reverse("admin:synology_dsmaccount_changelist")).content.decode()
    assert "DS923+" not in page and "ds923" not in page


def test_a_neighbour_cannot_link_a_valais_person_even_by_forging_the_form(neighbour_console, valais, neighbour_nas,
                                                                          mael):
    from synology.models import DSMAccount

    account = DSMAccount.objects.get(nas=neighbour_nas, name="admin")
    url = reverse("admin:synology_dsmaccount_change", args=[account.pk])
    response = neighbour_console.post(url, {"user": mael.pk})
    assert response.status_code == 200  # the form again, with an error
    account.refresh_from_db()
    assert account.user_id is None


def test_autocomplete_offers_only_the_admins_people(neighbour_console, mael_console, valais):
    url = reverse("admin:autocomplete")
    query = {"app_label": "accounts", "model_name": "membership", "field_name": "user", "term": ""}
    emails = {r["text"] for r in neighbour_console.get(url, query).json()["results"]}
    assert emails == {"outsider@example.org"}
    emails = {r["text"] for r in mael_console.get(url, query).json()["results"]}
    assert "mael@example.com" in emails and "outsider@example.org" not in emails


def test_hub_wide_pages_are_the_operators(mael_console, operator, client, google_like):
    from tests.conftest import signed_in

    for name in ("admin:accounts_upstream_changelist", "admin:oidc_signingkey_changelist"):
        assert mael_console.get(reverse(name)).status_code == 403, name
    operator_console = signed_in(client.__class__(), operator)
    for name in ("admin:accounts_upstream_changelist", "admin:oidc_signingkey_changelist"):
        assert operator_console.get(reverse(name)).status_code == 200, name
    index = mael_console.get(reverse("admin:index")).content.decode()
    assert "Upstream" not in index and "Signing key" not in index
    for plumbing in ("/admin/oauth2_provider/accesstoken/", "/admin/social_django/nonce/", "/admin/auth/group/",
                     "/admin/oauth2_provider/grant/", "/admin/social_django/usersocialauth/"):
        assert operator_console.get(plumbing).status_code == 404, plumbing


def test_a_household_admin_cannot_make_anyone_an_operator(mael_console, mael, mum):
    for person in (mael, mum):
        url = reverse("admin:accounts_user_change", args=[person.pk])
        assert "is_superuser" not in mael_console.get(url).content.decode()
        mael_console.post(url, {"name": "Boss", "is_superuser": "on", "is_staff": "on", "email": person.email,
                                "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
                                "social_auth-TOTAL_FORMS": "0", "social_auth-INITIAL_FORMS": "0"})
        person.refresh_from_db()
        assert not person.is_superuser


def test_household_admins_are_staff_and_never_superusers(people, mael):
    mael.refresh_from_db()
    assert mael.is_staff and not mael.is_superuser
    assert not people["mum"].is_staff


def test_losing_the_membership_closes_the_console_at_once(neighbour_console, neighbour, other_household):
    from accounts.models import Membership

    assert neighbour_console.get(reverse("admin:index")).status_code == 200
    Membership.objects.filter(user=neighbour, household=other_household).delete()  # from a shell
    assert neighbour_console.get(reverse("admin:index")).status_code != 200
    assert neighbour_console.get(reverse("admin:synology_nas_changelist")).status_code in FORBIDDEN


def test_demotion_by_config_takes_effect_at_once(mael_console, household, mael):
    from accounts.services import MemberSpec, set_members

    assert mael_console.get(reverse("admin:index")).status_code == 200
    set_members(household, [MemberSpec("mael@example.com", "Maël Valais", "member")])
    assert mael_console.get(reverse("admin:index")).status_code != 200
    mael.refresh_from_db()
    assert not mael.is_staff


def test_promotion_in_the_admin_opens_the_console_at_once(mael_console, household, mum, client):
    from accounts.models import Membership
    from tests.conftest import signed_in

    mum_console = signed_in(client.__class__(), mum)
    assert mum_console.get(reverse("admin:index")).status_code != 200
    membership = Membership.objects.get(user=mum, household=household)
    url = reverse("admin:accounts_household_change", args=[household.pk])
    form = {"name": household.name, "memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": membership.pk, "memberships-0-household": household.pk,
            "memberships-0-user": mum.pk, "memberships-0-role": "admin"}
    # The household page lists every member: post them all back unchanged except mum.
    others = list(Membership.objects.filter(household=household).exclude(pk=membership.pk))
    form["memberships-TOTAL_FORMS"] = form["memberships-INITIAL_FORMS"] = str(1 + len(others))
    for i, other in enumerate(others, start=1):
        form.update({f"memberships-{i}-id": other.pk, f"memberships-{i}-household": household.pk,
                     f"memberships-{i}-user": other.user_id, f"memberships-{i}-role": other.role})
    response = mael_console.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert mum_console.get(reverse("admin:index")).status_code == 200


def test_the_dashboard_shows_only_the_admins_households(neighbour_console, mael_console, valais, neighbour_nas):
    page = neighbour_console.get(reverse("admin:index")).content.decode()
    assert "The neighbours" in page and "DS220" in page
    assert "Valais family" not in page and "DS923+" not in page and "someone@example.com" not in page
    page = mael_console.get(reverse("admin:index")).content.decode()
    assert "Valais family" in page and "DS923+" in page and "DS220" not in page
    assert "someone@example.com" in page  # the refusal at valais's app, with its fix link
    assert "No NAS" in page  # no.nas@example.com has no account on ds923


def test_the_neighbour_reads_none_of_valais_audit_trail(neighbour_console, valais, mael, dsm_client):
    from identityhub.audit import record_event

    record_event("sign_in", user=mael, upstream_id="google")
    record_event("token_issued", user=mael, client_id=dsm_client.client_id)
    page = neighbour_console.get(reverse("admin:identityhub_auditevent_changelist")).content.decode()
    assert "mael@example.com" not in page and "ds923" not in page


def test_a_person_shared_by_two_households_shows_only_the_admins_memberships(neighbour_console, mael, other_household):
    from accounts.models import Membership

    Membership.objects.create(user=mael, household=other_household)
    page = neighbour_console.get(reverse("admin:accounts_user_change", args=[mael.pk])).content.decode()
    assert "neighbours" in page
    assert "mael.valais" not in page  # the DSM account on valais's NAS
    changelist = neighbour_console.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert "valais" not in changelist


def test_the_view_on_site_shortcut_is_not_mounted(mael_console, neighbour_console, dsm_client, nas):
    """It was a 500 for apps, and it would tell the neighbour that an object exists."""
    from django.contrib.contenttypes.models import ContentType
    from oauth2_provider.models import Application

    from synology.models import NAS

    for model, pk in ((Application, dsm_client.pk), (NAS, nas.pk)):
        ct = ContentType.objects.get_for_model(model)
        for console in (mael_console, neighbour_console):
            assert console.get(f"/admin/r/{ct.pk}/{pk}/").status_code == 404


def test_consents_are_the_operators(mael_console):
    assert mael_console.get(reverse("admin:oidc_consent_changelist")).status_code == 403


def test_a_forged_household_form_cannot_add_another_households_person(mael_console, household, people):
    """The members inline offers only the admin's people; a POST naming someone else is refused."""
    from accounts.models import Membership

    outsider = people["outsider"]
    current = list(Membership.objects.filter(household=household))
    form = {"name": household.name, "memberships-TOTAL_FORMS": str(len(current) + 1),
            "memberships-INITIAL_FORMS": str(len(current))}
    for i, m in enumerate(current):
        form.update({f"memberships-{i}-id": m.pk, f"memberships-{i}-household": household.pk,
                     f"memberships-{i}-user": m.user_id, f"memberships-{i}-role": m.role})
    n = len(current)
    form.update({f"memberships-{n}-household": household.pk, f"memberships-{n}-user": outsider.pk,
                 f"memberships-{n}-role": "admin"})
    response = mael_console.post(reverse("admin:accounts_household_change", args=[household.pk]), form)
    assert response.status_code == 200  # the form again, with an error
    assert not Membership.objects.filter(user=outsider, household=household).exists()


def test_a_forged_mapping_cannot_point_at_another_households_nas(mael_console, neighbour_nas):
    from synology.models import AccountMapping

    response = mael_console.post(reverse("admin:synology_accountmapping_add"),
                                 {"nas": neighbour_nas.pk, "email": "spy@example.com", "account_name": "admin"})
    assert response.status_code == 200
    assert not AccountMapping.objects.filter(nas=neighbour_nas).exists()
