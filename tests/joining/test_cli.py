"""`hub invite` and `hub requests`: output formats and exit codes (DESIGN.md, "Contract extensions")."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Membership, User
from joining import services
from joining.cli import age
from joining.models import AccessRequest, Invitation
from synology.models import DSMAccount
from tests.joining.fixtures_console import *  # noqa: F403

pytestmark = pytest.mark.django_db
URL = re.compile(r"^https?://[^/\s]+/invite/[A-Za-z0-9_-]{40,}/$")
LINE = re.compile(r"^(\d+) (\S+) (\S+) (\S+) (\d+[mhd])$")


def hub(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("hub", *args, stdout=out, stderr=err)
        status = 0
    except SystemExit as exit:
        status = exit.code
    return status, out.getvalue(), err.getvalue()


# --- hub invite ------------------------------------------------------------------------------------
def test_invite_prints_the_url_alone(household, settings):
    status, out, err = hub("invite", "Granny@Example.net", "--household", "valais", "--name", "Granny Smith")
    assert status == 0, err
    assert out.endswith("\n") and out.count("\n") == 1
    url = out.strip()
    assert URL.match(url) and url.startswith(settings.HUB_ISSUER.rstrip("/") + "/invite/")
    invitation = services.find_invitation(url.rsplit("/", 2)[1])
    assert invitation is not None and invitation.created_by is None
    assert (invitation.person.email, invitation.person.name, invitation.role) == (
        "granny@example.net", "Granny Smith", "member")
    assert abs((invitation.expires_at - timezone.now()) - timedelta(days=7)) < timedelta(minutes=1)


def test_invite_an_admin_for_36_hours(household):
    status, out, _ = hub("invite", "aunt@example.net", "--household", "valais", "--role", "admin",
                         "--expires", "36h")
    assert status == 0
    invitation = Invitation.objects.get()
    assert invitation.role == "admin"
    assert abs((invitation.expires_at - timezone.now()) - timedelta(hours=36)) < timedelta(minutes=1)


def test_invite_linking_an_existing_account(nas, free_account):
    status, out, err = hub("invite", "granny@example.net", "--household", "valais", "--nas", "ds923",
                           "--account", "photos")
    assert status == 0, err
    free_account.refresh_from_db()
    assert free_account.user.email == "granny@example.net"
    assert Invitation.objects.get().account_name == "photos"


def test_invite_creating_an_account_on_the_nas(live_nas, fake_dsm):
    status, out, err = hub("invite", "granny@example.net", "--household", "valais", "--nas", "ds923",
                           "--create-account", "granny")
    assert status == 0, err
    assert URL.match(out.strip())
    assert fake_dsm.find_user("granny")["email"] == "granny@example.net"
    assert DSMAccount.objects.get(nas=live_nas, name="granny").user.email == "granny@example.net"
    assert fake_dsm.passwords["granny"] not in out + err


@pytest.mark.parametrize(("args", "error"), [
    (["--household", "nowhere"], "unknown household: nowhere (known: neighbours, valais)"),
    (["--household", "neighbours", "--nas", "ds923", "--account", "photos"], "DS923+ does not belong to"),
    (["--household", "valais", "--nas", "ds999", "--account", "photos"], "unknown NAS: ds999"),
    (["--household", "valais", "--nas", "ds923", "--account", "photos", "--create-account", "granny"],
     "cannot be used together"),
    (["--household", "valais", "--nas", "ds923"], "--nas needs --account"),
    (["--household", "valais", "--account", "photos"], "need --nas"),
    (["--household", "valais", "--expires", "soon"], "is not a duration such as 7d"),
    (["--household", "valais", "--expires", "365d"], "between 5 minutes and 90 days"),
    (["--household", "valais", "--role", "owner"], "The role must be member or admin."),
    (["--household", "valais", "--nas", "ds923", "--account", "mael.valais"], "already belongs to"),
    (["--household", "valais", "--nas", "ds923", "--create-account", "bad name"], "cannot be a DSM account name"),
])
def test_invite_user_errors_exit_1_and_make_nothing(nas, free_account, other_household, args, error):
    status, out, err = hub("invite", "granny@example.net", *args)
    assert (status, out) == (1, ""), err
    assert error in err, err
    assert not Invitation.objects.exists()
    assert not User.objects.filter(email="granny@example.net").exists()


def test_invite_a_bad_email(household):
    status, out, err = hub("invite", "granny", "--household", "valais")
    assert (status, out) == (1, "") and "is not an email address" in err


# --- hub requests ------------------------------------------------------------------------------------
def test_requests_lists_open_requests_one_a_line(nas_request, app_request, neighbour_request):
    services.decline_request(app_request)
    AccessRequest.objects.filter(pk=nas_request.pk).update(created_at=timezone.now() - timedelta(hours=3, minutes=5))
    AccessRequest.objects.filter(pk=neighbour_request.pk).update(created_at=timezone.now() - timedelta(days=2, hours=1))
    status, out, err = hub("requests")
    assert status == 0, err
    lines = out.splitlines()
    assert [LINE.match(line).groups() for line in lines] == [
        (str(neighbour_request.pk), "cousin@example.org", "neighbours", "-", "2d"),
        (str(nas_request.pk), "granny@example.net", "valais", "ds923-dsm", "3h"),
    ]


def test_requests_with_none_open_prints_nothing(db):
    assert hub("requests") == (0, "", "")


def test_age():
    assert [age(timedelta(seconds=s)) for s in (0, 59, 60, 3599, 3600, 86399, 86400, 10 * 86400)] == [
        "0m", "0m", "1m", "59m", "1h", "23h", "1d", "10d"]


def test_approve_linking_an_existing_account(nas_request, free_account):
    status, out, err = hub("requests", "approve", str(nas_request.pk), "--account", "photos")
    assert status == 0, err
    assert out == "granny@example.net joined Valais family with the account photos on DS923+.\n"
    nas_request.refresh_from_db()
    assert nas_request.state == AccessRequest.State.APPROVED and nas_request.decided_by is None
    person = User.objects.get(email="granny@example.net")
    assert Membership.objects.filter(user=person, household_id="valais").exists()
    free_account.refresh_from_db()
    assert free_account.user == person


def test_approve_creating_an_account(nas_request, live_nas, fake_dsm):
    status, out, err = hub("requests", "approve", str(nas_request.pk), "--create-account", "granny")
    assert status == 0, err
    assert out == "granny@example.net joined Valais family with the new account granny on DS923+.\n"
    assert fake_dsm.find_user("granny")


def test_approve_without_a_nas(app_request):
    status, out, _ = hub("requests", "approve", str(app_request.pk))
    assert (status, out) == (0, "granny@example.net joined Valais family.\n")


def test_approve_failing_on_the_nas_leaves_it_open(nas_request, live_nas, fake_dsm):
    fake_dsm.stop()
    status, out, err = hub("requests", "approve", str(nas_request.pk), "--create-account", "granny")
    assert (status, out) == (1, "")
    assert err.startswith("nothing done: Could not create “granny” on DS923+")
    nas_request.refresh_from_db()
    assert nas_request.state == AccessRequest.State.OPEN and nas_request.outcome.startswith("Could not create")
    assert not User.objects.filter(email="granny@example.net").exists()


@pytest.mark.parametrize(("args", "error"), [
    ([], "Choose the account on DS923+"),
    (["--account", "photos", "--create-account", "granny"], "cannot be used together"),
    (["--account", "nobody"], "has no account called “nobody”"),
    (["--create-account", "maman"], "is taken on"),
])
def test_approve_user_errors_exit_1(nas_request, free_account, args, error):
    status, out, err = hub("requests", "approve", str(nas_request.pk), *args)
    assert (status, out) == (1, ""), err
    assert error in err, err
    nas_request.refresh_from_db()
    assert nas_request.state == AccessRequest.State.OPEN


def test_approve_an_account_for_an_app_without_a_nas(app_request):
    status, out, err = hub("requests", "approve", str(app_request.pk), "--account", "photos")
    assert (status, out) == (1, "") and "not bound to a NAS" in err


def test_decline(nas_request):
    status, out, err = hub("requests", "decline", str(nas_request.pk))
    assert (status, out) == (0, "The request of granny@example.net was declined.\n"), err
    nas_request.refresh_from_db()
    assert nas_request.state == AccessRequest.State.DECLINED


def test_deciding_twice_or_an_unknown_request_exits_1(app_request):
    assert hub("requests", "decline", str(app_request.pk))[0] == 0
    status, out, err = hub("requests", "decline", str(app_request.pk))
    assert (status, out) == (1, "") and "already answered" in err
    status, out, err = hub("requests", "approve", str(app_request.pk))
    assert (status, out) == (1, "") and "already answered (declined)" in err
    for missing in ("999", "abc"):
        status, out, err = hub("requests", "approve", missing)
        assert (status, out) == (1, "") and f"no access request {missing}" in err
