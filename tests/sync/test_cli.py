"""`hub sync [NAS…]`: output lines and exit codes (DESIGN.md, "Commands")."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from synology.models import NAS, SyncRun
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


def test_a_disabled_nas_is_skipped_and_naming_it_is_a_user_error(nas_ds923, fake_dsm, sync_household):
    NAS.objects.filter(pk="ds923").update(enabled=False)
    status, out, err = hub_sync()
    assert status == 0 and out == "" and "no enabled NAS" in err
    declare_nas("ds1621", household=sync_household, base_url=fake_dsm.url, service_username=SERVICE_USER,
                service_password=SERVICE_PASSWORD)
    status, out, err = hub_sync("ds1621", "ds923")
    assert status == 1 and out == ""
    assert err.strip() == ("disabled NAS: ds923: enable it to sync it (admin, or `enabled: true` in the config); "
                           "nothing synced")
    assert fake_dsm.requests == [] and not SyncRun.objects.exists()


def test_an_enabled_nas_without_service_account_fails_clearly(nas_ds923, fake_dsm):
    """Issue 7: "no service account", not "authentication failed"; a failed NAS: exit 2."""
    NAS.objects.filter(pk="ds923").update(service_username="", service_password="")
    status, out, _ = hub_sync("ds923")
    assert status == 2
    assert out.strip() == "ds923: error: no service account: set its user name and password"
    assert fake_dsm.requests == []


def test_real_process_exit_status_and_streams(tmp_path, fake_dsm):
    """`manage.py hub sync` as a real process on a scratch SQLite database."""
    import os
    import subprocess
    import sys

    fake_dsm.add_user("u1")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite3'}", "HUB_VAR_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)

    def manage(*args):
        return subprocess.run([sys.executable, "manage.py", *args], env=env, capture_output=True, text=True,
                              timeout=60)

    assert manage("migrate", "--noinput", "-v0").returncode == 0
    setup = (
        "from accounts.models import Household; from synology.services import declare_nas; "
        "h = Household.objects.create(id='h', name='h'); "
        f"declare_nas('ds923', household=h, base_url='{fake_dsm.url}', service_username='{SERVICE_USER}', "
        f"service_password='{SERVICE_PASSWORD}'); "
        "declare_nas('asleep', household=h, base_url='http://127.0.0.1:9', service_username='x', "
        "service_password='y')"
    )
    assert manage("shell", "-c", setup).returncode == 0
    ok = manage("hub", "sync", "ds923")
    assert ok.returncode == 0 and OK_LINE.match(ok.stdout.strip()), ok.stderr
    assert "ds923: listed 1/1 users" in ok.stderr
    failed = manage("hub", "sync")
    assert failed.returncode == 2
    assert failed.stdout.splitlines()[0].startswith("asleep: unreachable: cannot connect")
    assert OK_LINE.match(failed.stdout.splitlines()[1])
    unknown = manage("hub", "sync", "nope")
    assert unknown.returncode == 1 and "unknown NAS: nope" in unknown.stderr and unknown.stdout == ""
    assert SERVICE_PASSWORD not in ok.stdout + ok.stderr + failed.stdout + failed.stderr


def test_undecryptable_password_is_a_failed_nas_not_a_traceback(nas_ds923, fake_dsm):
    """A changed HUB_ENCRYPTION_KEY: the run is recorded as an error and `hub sync` exits 2."""
    from django.db import connection

    with connection.cursor() as cursor:  # a token no configured key decrypts
        cursor.execute("UPDATE synology_nas SET service_password = %s WHERE id = %s", ["gAAAAABnot-a-token", "ds923"])
    status, out, _ = hub_sync("ds923")
    assert status == 2
    assert out.startswith("ds923: error: a stored secret cannot be decrypted")
    assert SyncRun.objects.get(nas_id="ds923").outcome == "error"
    assert NAS.objects.filter(pk="ds923", last_status="error", consecutive_failures=1).exists()
    assert fake_dsm.logins == 0


def test_a_multi_line_internal_error_is_still_one_line_per_nas(nas_ds923, fake_dsm, monkeypatch):
    import synology.sync

    def broken(*args, **kwargs):
        raise RuntimeError('duplicate key value violates unique constraint\nDETAIL:  Key (nas_id, name)=(ds923, u)')

    monkeypatch.setattr(synology.sync, "reconcile", broken)
    fake_dsm.add_user("u")
    status, out, _ = hub_sync("ds923")
    assert status == 2
    assert out == "ds923: error: internal error: RuntimeError: duplicate key value violates unique constraint " \
                  "DETAIL: Key (nas_id, name)=(ds923, u)\n"
