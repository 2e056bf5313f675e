"""Issue 9 items 7, 8 and 9: who a sign-in link belongs to, how emails compare, and what anonymous
requests may leave behind.

7. A link is (upstream, subject) *under the upstream's issuer*: after the issuer changes, a colliding
   `sub` at the new issuer is nobody (its links are dropped by `hub apply` and by the console).
8. Emails fold ASCII letters only: a Kelvin sign (U+212A) is not a `k`.
9. Housekeeping clears expired sessions and social-auth leftovers; callbacks without a pending sign-in
   are counted, not audited; /login*, /complete* and failed client authentication at /token/ are
   rate-limited (429 + Retry-After).
"""

from __future__ import annotations

import pytest
from social_django.models import UserSocialAuth

from accounts.models import normalize_email
from identityhub.models import AuditEvent
from tests.conftest import upstream_round_trip
from tests.fakes.oidc_upstream import Identity

pytestmark = pytest.mark.django_db

KELVIN = "\u212a"  # KELVIN SIGN: str.lower() turns it into an ASCII "k"


# --- 8. ASCII-only case folding ---------------------------------------------------------------
@pytest.fixture
def kate(household):
    from accounts.services import add_member

    return add_member(household, "kate@example.com", "Kate")


def test_normalize_email_folds_ascii_letters_only():
    assert normalize_email("  Kate@Example.COM ") == "kate@example.com"
    assert normalize_email(f"{KELVIN}ate@example.com") == f"{KELVIN}ate@example.com"
    assert normalize_email("ÉLODIE@example.com") == "Élodie@example.com"  # stored emails stay as they were


def test_a_kelvin_sign_in_a_verified_address_is_not_another_persons_k(client, upstream_provider, google_like, kate):
    upstream_provider.identity = Identity(sub="g-kelvin", email=f"{KELVIN}ate@example.com")
    response = upstream_round_trip(client)
    assert response.status_code == 403
    assert b"not a member of any household" in response.content
    assert "_auth_user_id" not in client.session
    assert not UserSocialAuth.objects.exists()
    assert AuditEvent.objects.filter(kind="refusal", reason="unknown_person").exists()


def test_a_kelvin_sign_is_a_person_of_its_own_in_config_and_mappings(kate, nas):
    from synology.models import AccountMapping
    from synology.services import set_account_mappings

    set_account_mappings(nas, {f"{KELVIN}ATE@example.com": "kate"})
    assert list(AccountMapping.objects.filter(nas=nas).values_list("email", flat=True)) == [
        f"{KELVIN}ate@example.com"]
    mapping = AccountMapping(nas=nas, email=f" {KELVIN}IM@EXAMPLE.com", account_name="kim")
    mapping.save()
    assert mapping.email == f"{KELVIN}im@example.com"
    from accounts.services import declare_person

    assert declare_person(f"{KELVIN}ate@example.com") != kate
