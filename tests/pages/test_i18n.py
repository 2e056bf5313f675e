"""The family's language: Accept-Language or the switcher; French and German catalogues, complete and compiled."""

from __future__ import annotations

import ast
import gettext
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import authorize_query, signed_in, upstream_round_trip
from tests.fakes.oidc_upstream import Identity
from tests.pages.conftest import assert_family_page, parse

pytestmark = pytest.mark.django_db

LOCALE = Path(settings.BASE_DIR) / "locale"


def test_french_accept_language_translates_the_refusal_at_the_authorization_endpoint(client, people, nas, dsm_client):
    signed_in(client, people["no_nas"])
    response = client.get(authorize_query("ds923-dsm"), HTTP_ACCEPT_LANGUAGE="fr-CH,fr;q=0.9,en;q=0.5")
    assert response.status_code == 403
    assert_family_page(response, lang="fr")
    content = response.content.decode()
    assert "no.nas@example.com n’a pas de compte sur DS923+." in content
    assert "Demandez à l’admin de votre foyer de créer un compte DSM" in content
    assert "Utiliser un autre compte" in content and "Ce qui s’est passé" in content
    assert "has no account" not in content


def test_german_accept_language_translates_the_refusal_at_sign_in(client, upstream_provider, google_like, people):
    upstream_provider.identity = Identity(sub="g-9", email="stranger@example.net")
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "de-DE,de;q=0.9"
    response = upstream_round_trip(client)
    assert response.status_code == 403
    assert_family_page(response, lang="de")
    content = response.content.decode()
    assert "stranger@example.net gehört zu keinem Haushalt auf diesem Hub." in content
    assert "Bitten Sie den Admin Ihres Haushalts, diese Adresse hinzuzufügen" in content
    assert "Die Anmeldung hat nicht geklappt" in content


def test_german_not_in_household_refusal(client, people, nas, dsm_client):
    signed_in(client, people["outsider"])
    content = client.get(authorize_query("ds923-dsm"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "outsider@example.org gehört zu keinem Haushalt, der DSM on DS923+ verwenden darf." in content


def test_an_unknown_language_falls_back_to_english(client, household):
    response = client.get("/logged-out/", HTTP_ACCEPT_LANGUAGE="ja")
    assert_family_page(response, lang="en")
    assert "You are signed out" in response.content.decode()


def test_the_switcher_sets_the_language_and_stays_on_the_hub(client, household):
    page = parse(client.get("/logged-out/"))
    assert page.ids["language-fr"]["value"] == "fr" and page.ids["language-en"]["aria-pressed"] == "true"
    response = client.post("/i18n/setlang/", {"language": "de", "next": "/logged-out/"})
    assert response.status_code == 302 and response["Location"] == "/logged-out/"
    german = client.get("/logged-out/")
    assert_family_page(german, lang="de")
    assert "Sie sind abgemeldet" in german.content.decode()
    assert parse(german).ids["language-de"]["aria-pressed"] == "true"
    # Django's view only follows same-host paths
    away = client.post("/i18n/setlang/", {"language": "fr", "next": "https://evil.example/"})
    assert away.status_code == 302 and "evil.example" not in away["Location"]


def test_the_consent_page_speaks_french(client, mael, household):
    from identityhub.oidc.services import register_client
    from tests.conftest import DSM_SECRET, RP_REDIRECT

    register_client("photos", name="Family Photos", redirect_uris=[RP_REDIRECT], client_secret=DSM_SECRET,
                    households=[household])
    signed_in(client, mael)
    content = client.get(authorize_query("photos", scope="openid email"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Autoriser Family Photos\u00a0?" in content and "Voir votre adresse e-mail" in content  # French spacing


# --- the catalogues -------------------------------------------------------------------------
def _po_entries(path: Path) -> dict[str, object]:
    """msgid -> msgstr (or the list of plural msgstr) of a .po file, without the header."""
    entries: dict[str, object] = {}
    field, values = None, {}
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if values.get("msgid"):
                plurals = sorted(k for k in values if k.startswith("msgstr["))
                entries[values["msgid"]] = [values[k] for k in plurals] if plurals else values.get("msgstr", "")
            values, field = {}, None
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            values[field] += ast.literal_eval(line)
            continue
        field, _, rest = line.partition(" ")
        values[field] = ast.literal_eval(rest)
    return entries


@pytest.mark.parametrize("language", ["fr", "de"])
def test_every_string_is_translated_and_the_compiled_catalogue_is_current(language):
    po = LOCALE / language / "LC_MESSAGES" / "django.po"
    mo = po.with_suffix(".mo")
    assert mo.exists(), "run compilemessages and commit the .mo (CI has no gettext tools)"
    entries = _po_entries(po)
    assert len(entries) > 100
    untranslated = [msgid for msgid, value in entries.items() if not value or (isinstance(value, list) and not all(value))]
    assert untranslated == []
    with mo.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for msgid, value in entries.items():
        if isinstance(value, list):
            assert compiled.ngettext(msgid, msgid + "s", 1) == value[0], msgid
        else:
            assert compiled.gettext(msgid) == value, f"{msgid!r}: the .mo is older than the .po"
        # the placeholders survive translation
        for text in value if isinstance(value, list) else [value]:
            assert sorted(_placeholders(text)) == sorted(_placeholders(msgid)), (msgid, text)


def _placeholders(text: str) -> list[str]:
    import re

    return re.findall(r"%\((\w+)\)s", text)
