"""The household console in the family's language: the hub's own console strings (dashboard, NAS
page, app page, Connect DSM) in French and German; English stays the default, and what the audit
trail stores stays English."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.fakes.dsm import FakeDSM

pytestmark = pytest.mark.django_db


def page(client, url: str, language: str, **kwargs) -> str:
    response = client.get(url, HTTP_ACCEPT_LANGUAGE=language, **kwargs)
    assert response.status_code == 200
    assert f'lang="{language}"' in response.content.decode()
    return html.unescape(response.content.decode())


def test_the_dashboard_speaks_french(mael_console, nas):
    content = page(mael_console, "/admin/", "fr")
    assert "Refus récents" in content and "Aucun refus récemment." in content
    assert "Personnes sans compte" in content and "Synchronisation" in content
    assert "jamais synchronisé" in content  # the sync health line
    assert "Gérer" in content and ">Personnes</a>" in content and ">Comptes DSM</a>" in content
    assert "Tous les refus dans le journal" not in content  # only with refusals
    assert "never synced" not in content and "Recent refusals" not in content


def test_the_dashboard_speaks_german(mael_console, nas):
    content = page(mael_console, "/admin/", "de")
    assert "Letzte Ablehnungen" in content and "Personen ohne Konto" in content
    assert "noch nie synchronisiert" in content
    assert "Verwalten" in content and ">Haushalte</a>" in content
    assert "never synced" not in content


def test_a_failing_nas_reads_in_french_with_its_status(mael_console, nas):
    from synology.models import NAS

    now = timezone.now()
    NAS.objects.filter(pk=nas.pk).update(last_status=NAS.Status.UNREACHABLE, failing_since=now - timedelta(minutes=5),
                                         last_attempt_at=now, next_sync_at=now + timedelta(minutes=30))
    content = page(mael_console, "/admin/", "fr")
    assert "injoignable depuis " in content and ", prochain essai à " in content
    assert "unreachable" not in content


def test_a_refusal_offers_its_fix_in_french(mael_console, nas, people):
    from identityhub.audit import record_event

    record_event("refusal", reason="no_nas_account", user=people["mael"], nas_id=nas.pk, client_id="ds923-dsm")
    content = page(mael_console, "/admin/", "fr")
    assert "Associer un compte DSM" in content and "Tous les refus dans le journal" in content
    assert "no_nas_account" in content  # the reason code is a machine value: never translated


def test_the_nas_page_has_french_and_german_buttons(mael_console, nas):
    url = f"/admin/synology/nas/{nas.pk}/change/"
    french = page(mael_console, url, "fr")
    assert "Tester la connexion" in french and "Synchroniser maintenant" in french
    assert "Connexion au NAS" in french and "Comptes sur ce NAS" in french and "Mot de passe de service" in french
    german = page(mael_console, url, "de")
    assert "Verbindung testen" in german and "Jetzt synchronisieren" in german
    assert "Test connection" not in german


def test_the_app_page_shows_connect_dsm_in_french_and_german(mael_console, dsm_client):
    url = f"/admin/oauth2_provider/application/{dsm_client.pk}/change/"
    french = page(mael_console, url, "fr")
    assert "Connecter DSM" in french and "Panneau de configuration → Domaine/LDAP → Client SSO" in french
    assert "ID d’application" in french and "URL de redirection" in french and "Claim du nom d’utilisateur" in french
    assert 'aria-label="Copier ID d’application"' in french and ">Copier</button>" in french
    assert "Aperçu des informations transmises" in french and "Qui peut l’utiliser" in french
    assert "ds923-dsm" in french and "openid profile email" in french  # the values to type are unchanged
    german = page(mael_console, url, "de")
    assert "DSM verbinden" in german and "Anwendungs-ID" in german and "Systemsteuerung" in german
    assert "Connect DSM" not in german and "Application ID" not in german


def test_sync_now_refusal_is_french_on_screen(mael_console, nas):
    from synology.models import NAS

    NAS.objects.filter(pk=nas.pk).update(enabled=False)
    response = mael_console.post(f"/admin/synology/nas/{nas.pk}/sync/", follow=True, HTTP_ACCEPT_LANGUAGE="fr")
    # (Django's admin capitalises the first letter of a message: "Ds923 …", in English too)
    assert "s923 est désactivé\u00a0: activez-le pour le synchroniser" in html.unescape(response.content.decode())


def test_test_connection_says_it_in_french_and_records_it_in_english(mael_console, nas):
    from identityhub.models import AuditEvent
    from synology.models import NAS

    with FakeDSM("dsm7", csrf=True) as fake:
        NAS.objects.filter(pk=nas.pk).update(base_url=fake.url)
        stored = NAS.objects.get(pk=nas.pk)
        stored.service_username = "hub-sync"
        stored.service_password = fake.accounts["hub-sync"].password
        stored.save()
        response = mael_console.post(f"/admin/synology/nas/{nas.pk}/test/", follow=True, HTTP_ACCEPT_LANGUAGE="fr")
    content = html.unescape(response.content.decode())
    assert "Ds923\u00a0: ok\u00a0:" in content and "connecté en tant que hub-sync" in content
    recorded = AuditEvent.objects.get(reason="test_connection").details["message"]
    assert recorded.startswith("ds923: ok: ") and "signed in as hub-sync, who may list users" in recorded


def test_english_stays_the_default(mael_console, nas):
    content = page(mael_console, "/admin/", "en")
    assert "Recent refusals" in content and "never synced" in content
