"""Issue 9 item 14: a refused prompt=none request tells the client `access_denied` and nothing else —
not the person's email, nor their NAS — whichever app asks and whatever the person's language."""

import pytest

from tests.conftest import authorize_query, redirect_params, signed_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_prompt_none_refusal_says_access_denied_only(client, people, nas, dsm_client, language):
    from identityhub.models import AuditEvent

    signed_in(client, people["no_nas"])
    response = client.get(authorize_query("ds923-dsm", prompt="none", state="s1"), HTTP_ACCEPT_LANGUAGE=language)
    params = redirect_params(response)
    assert params.pop("iss")  # RFC 9207
    assert params == {"error": "access_denied", "state": "s1"}
    assert "no.nas" not in response["Location"] and "DS923" not in response["Location"]
    event = AuditEvent.objects.get(kind="refusal", reason="no_nas_account")  # the reason stays on the hub
    assert event.user == people["no_nas"] and event.client_id == "ds923-dsm"


def test_another_households_app_learns_nothing_about_a_member(client, people, other_household, nas):
    """The app of the household next door probes a valais member with prompt=none."""
    from identityhub.oidc.services import register_client
    from tests.conftest import RP_REDIRECT

    register_client("next-door", name="Next door", redirect_uris=[RP_REDIRECT], public=True,
                    households=[other_household], skip_consent=True)
    signed_in(client, people["mael"])
    location = client.get(authorize_query("next-door", prompt="none", code_challenge="x" * 43,
                                          code_challenge_method="S256"))["Location"]
    assert "error=access_denied" in location and "mael" not in location and "error_description" not in location
