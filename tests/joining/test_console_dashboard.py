"""The console's front page counts each household's open access requests and waiting invitations
(the admin's households only) and links to the filtered lists."""

from __future__ import annotations

import pytest

from joining import services
from tests.joining.fixtures_console import *  # noqa: F403
from tests.joining.fixtures_console import ask

pytestmark = pytest.mark.django_db


def test_the_dashboard_counts_requests_and_invitations_per_household(mael_console, nas_request, app_request,
                                                                     valais_invitation, neighbour_request):
    page = mael_console.get("/admin/").content.decode()
    assert ('<a href="/admin/joining/accessrequest/?state=open&amp;household__id__exact=valais" '
            'class="hub-attention" id="requests-valais">2 access requests waiting</a>') in page
    assert ('<a href="/admin/joining/invitation/?state=pending&amp;household__id__exact=valais" '
            'id="invitations-valais">1 invitation waiting</a>') in page
    assert 'href="/admin/joining/invitation/add/?household=valais"' in page
    assert "requests-neighbours" not in page  # the neighbours' request is not valais's business
    # The link leads to the open requests of that household.
    listing = mael_console.get("/admin/joining/accessrequest/?state=open&household__id__exact=valais")
    assert listing.content.decode().count("granny@example.net") == 2


def test_the_line_goes_once_nothing_waits(mael_console, app_request, household):
    services.decline_request(app_request)
    page = mael_console.get("/admin/").content.decode()
    assert 'id="requests-valais"' not in page and 'id="invitations-valais"' not in page
    assert 'id="invite-valais"' in page


def test_the_neighbour_sees_only_theirs(neighbour_console, nas_request, neighbour_request):
    page = neighbour_console.get("/admin/").content.decode()
    assert ">1 access request waiting</a>" in page and 'id="requests-valais"' not in page


def test_an_operator_sees_every_household(operator, nas_request, neighbour_request, people):
    from django.test import Client

    from tests.conftest import signed_in

    ask("neighbours", "", "", email="aunt@example.org", subject="g-aunt")
    page = signed_in(Client(), operator).get("/admin/").content.decode()
    assert ">1 access request waiting</a>" in page and ">2 access requests waiting</a>" in page
