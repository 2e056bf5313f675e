"""What a refusal page may offer besides "whom to ask": apps above accounts register offers.

A refusal (the login policy's at /complete/, or the provider's at the authorization endpoint) is
described by a `Refused` record; `render_refusal` asks every registered offer function what to
show. The joining app offers "Ask for access" there (joining/apps.py), so accounts never imports
it — the same pattern as the console's scope registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest


@dataclass(frozen=True)
class Refused:
    reason: str  # the audit trail's reason (unknown_person, not_in_household, no_nas_account, …)
    email: str = ""  # the address the refusal is about ("" when the upstream gave none)
    user: Any = None  # the signed-in person (the provider's refusals), None at sign-in
    # At sign-in, the identity the upstream proved: upstream id, uid, iss, email, name, email_verified.
    identity: dict[str, Any] = field(default_factory=dict)
    client_id: str = ""  # the app the person tried to open ("" when not known)
    next_url: str = ""  # where the person was going (the authorization request)


@dataclass(frozen=True)
class RefusalOffer:
    """One block on the refusal page: a sentence, and a POST button or a link."""

    text: str
    action_url: str = ""  # a POST form's action (with the CSRF token); "" for a sentence only
    action_label: str = ""
    element_id: str = "refusal-offer"


OfferFunction = Callable[[HttpRequest, Refused], "RefusalOffer | None"]
_offers: list[OfferFunction] = []


def register_offer(offer: OfferFunction) -> OfferFunction:
    if offer not in _offers:
        _offers.append(offer)
    return offer


def offers_for(request: HttpRequest, refused: Refused | None) -> list[RefusalOffer]:
    if refused is None:
        return []
    return [offer for function in _offers if (offer := function(request, refused)) is not None]
