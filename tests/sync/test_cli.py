"""`hub sync [NAS…]`: output lines and exit codes (DESIGN.md, "Commands")."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from synology.models import NAS
from synology.services import declare_nas

from .conftest import SERVICE_PASSWORD, SERVICE_USER

pytestmark = pytest.mark.django_db
OK_LINE = re.compile(r"^(\S+): ok new=(\d+) changed=(\d+) unchanged=(\d+) absent=(\d+) (\d+\.\d\d)s$")


def hub_sync(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("hub", "sync", *args, stdout=out, stderr=err)
        status = 0
    except SystemExit as exit:
        status = exit.code
    return status, out.getvalue(), err.getvalue()


def test_all_enabled_ok(nas_ds923, fake_dsm):
    for i in range(5):
        fake_dsm.add_user(f"u{i}")
    status, out, err = hub_sync()
    assert status == 0
    match = OK_LINE.match(out.strip())
    assert match and match.groups()[:5] == ("ds923", "5", "0", "0", "0"), out
    assert "ds923: listed 5/5 users" in err  # progress on stderr
    status, out, _ = hub_sync("ds923")
    assert status == 0 and OK_LINE.match(out.strip()).group(4) == "5"


def test_unknown_nas_is_a_user_error(nas_ds923, fake_dsm):
    status, out, err = hub_sync("ds923", "nope", "ds1")
    assert status == 1 and out == ""
    assert "unknown NAS: nope, ds1" in err
    assert fake_dsm.logins == 0  # nothing synced


def test_a_failing_nas_exits_2_and_others_still_sync(nas_ds923, fake_dsm, sync_household):
    fake_dsm.add_user("u")
    declare_nas("sleepy", household=sync_household, base_url="http://127.0.0.1:9", service_username=SERVICE_USER,
                service_password=SERVICE_PASSWORD)
    status, out, err = hub_sync()
    lines = out.strip().splitlines()
    assert status == 2
    assert OK_LINE.match(lines[0]).group(1) == "ds923"
    assert lines[1] == "sleepy: unreachable: cannot connect to http://127.0.0.1:9: connection refused"
    assert SERVICE_PASSWORD not in out + err


def test_auth_failure_line(nas_ds923, fake_dsm):
    fake_dsm.accounts[SERVICE_USER].otp = True
    status, out, _ = hub_sync("ds923")
    assert status == 2
    assert out.strip().startswith("ds923: auth_failed: the service account 'hub-sync' requires a 2-step")
    assert "without 2FA" in out


def test_disabled_nas_is_skipped_unless_named(nas_ds923, fake_dsm):
    NAS.objects.filter(pk="ds923").update(enabled=False)
    status, out, err = hub_sync()
    assert status == 0 and out == "" and "no enabled NAS" in err
    status, out, _ = hub_sync("ds923")
    assert status == 0 and out.startswith("ds923: ok ")
