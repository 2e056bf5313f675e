"""`hub doctor` against healthy and broken fakes: each check's exact line, and the exit status."""

from __future__ import annotations

import re
import socket

import pytest

from tests.conftest import DSM_SECRET
from tests.doctor.conftest import SERVICE_PASSWORD, check_lines, run_doctor


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _database_line() -> str:
    from django.db import connection

    return f"ok database: {connection.vendor} answers; every migration is applied"


@pytest.fixture
def dsm_app(doctor_nas):
    from identityhub.oidc.services import register_client

    application, _ = register_client("ds923-dsm", name="DSM on DS923+", redirect_uris=["https://ds923.example.com:5001"],
                                     client_secret=DSM_SECRET, nas=doctor_nas, skip_consent=True)
    return application


@pytest.fixture
def healthy(hub, doctor_nas, doctor_upstream, dsm_app):
    return hub


def test_a_healthy_deployment_passes_with_one_line_per_check(healthy, upstream_provider):
    from identityhub.oidc.keys import keyring

    status, lines = run_doctor()
    checks = check_lines(lines)
    assert status == 0, lines
    expected = [
        _database_line(),
        f"ok issuer: {healthy}/.well-known/openid-configuration answers and names this issuer",
        f"warn tls: plain http on loopback ({healthy}): fine for development; browsers, DSM and Google need an https "
        "issuer",
        f"ok upstream google: {upstream_provider.issuer}/.well-known/openid-configuration answers and names "
        f"{upstream_provider.issuer}",
        "warn clock: could not check: no HTTPS answer carried a Date header",
        "ok nas ds923: DSM 7.2.2-72806 Update 3; signed in as hub-sync, who may list users (2 local accounts)",
        f"ok signing key: {keyring().kid} loaded and published at {healthy}/.well-known/jwks.json",
    ]
    from django.conf import settings

    if settings.REDIS_URL:
        expected.insert(1, "ok redis: answers")
    assert [line for line in lines if line.split(" ", 1)[0] in {"ok", "warn", "fail"}] == expected
    assert set(checks) >= {"issuer", "tls", "clock", "upstream google", "nas ds923", "signing key"}


def test_the_dsm_values_of_each_dsm_app_follow_the_checks(healthy):
    _, lines = run_doctor()
    start = lines.index("DSM values for ds923-dsm (DSM on DS923+, NAS ds923) — Control Panel → Domain/LDAP → SSO Client:")
    assert lines[start + 1:start + 10] == [
        "  Profile: OIDC",
        "  Account type: Domain/LDAP/local  (DSM 7.2 or later; needed for local accounts)",
        "  Name: DSM on DS923+  (the sign-in button's label)",
        f"  Well-known URL: {healthy}/.well-known/openid-configuration",
        "  Application ID: ds923-dsm",
        "  Application secret: (shown once at creation — rotate to get a new one)",
        "  Redirect URL: https://ds923.example.com:5001",
        "  Authorization scope: openid profile email",
        "  Username claim: username",
    ]


def test_no_secret_is_ever_printed(healthy, upstream_provider, doctor_dsm):
    _, lines = run_doctor()
    doctor_dsm.accounts["hub-sync"].password = "another"  # a failing login prints no password either
    _, failing = run_doctor()
    output = "\n".join(lines + failing)
    for secret in (SERVICE_PASSWORD, DSM_SECRET, upstream_provider.client_secret):
        assert secret not in output


def test_nas_down(healthy, doctor_dsm):
    doctor_dsm.stop()
    status, lines = run_doctor()
    assert check_lines(lines)["nas ds923"] == (
        f"fail nas ds923: unreachable: cannot connect to {doctor_dsm.url}: connection refused")
    assert status == 1


def test_wrong_service_password(healthy, doctor_nas):
    doctor_nas.service_password = "not-the-password"
    doctor_nas.save()
    status, lines = run_doctor()
    assert check_lines(lines)["nas ds923"] == (
        "fail nas ds923: auth_failed: wrong account or password for the service account 'hub-sync' (DSM error 400)")
    assert status == 1


def test_service_account_that_may_not_list_users(healthy, doctor_dsm):
    doctor_dsm.accounts["hub-sync"].admin = False  # DSM answers 105 to the listing
    status, lines = run_doctor()
    assert check_lines(lines)["nas ds923"] == (
        "fail nas ds923: DSM 7.2.2-72806 Update 3: auth_failed: the service account 'hub-sync' is not an "
        "administrator (listing users needs the administrators group) (DSM error 105)")
    assert status == 1


def test_a_disabled_nas_is_a_warning(healthy, doctor_nas):
    doctor_nas.enabled = False
    doctor_nas.save()
    status, lines = run_doctor()
    assert check_lines(lines)["nas ds923"] == "warn nas ds923: disabled: not synced, not checked"
    assert status == 0


def test_a_nas_without_a_service_account_fails(healthy, doctor_nas):
    doctor_nas.service_username = ""
    doctor_nas.save()
    status, lines = run_doctor()
    assert check_lines(lines)["nas ds923"].startswith("fail nas ds923: ")
    assert status == 1


def test_upstream_down(healthy, upstream_provider):
    issuer = upstream_provider.issuer
    upstream_provider.stop()
    status, lines = run_doctor()
    assert check_lines(lines)["upstream google"] == (
        f"fail upstream google: {issuer}/.well-known/openid-configuration: connection refused")
    assert status == 1


def test_upstream_that_names_another_issuer(healthy, doctor_upstream, upstream_provider):
    doctor_upstream.issuer = upstream_provider.issuer.replace("127.0.0.1", "localhost")
    doctor_upstream.save()
    status, lines = run_doctor()
    configured = doctor_upstream.issuer
    assert check_lines(lines)["upstream google"] == (
        f'fail upstream google: {configured}/.well-known/openid-configuration names the issuer '
        f'"{upstream_provider.issuer}", not {configured}')
    assert status == 1


def test_the_mock_upstream_is_skipped_with_a_warning_in_production(healthy):
    from accounts.services import declare_upstream

    declare_upstream("dev", "mock", name="Mock")
    status, lines = run_doctor()
    assert check_lines(lines)["upstream dev"] == (
        "warn upstream dev: the mock upstream is refused unless HUB_DEBUG=1: skipped; disable or remove it")
    assert status == 0


def test_a_google_upstream_is_checked_at_googles_fixed_issuer(db, monkeypatch):
    from accounts.services import declare_upstream
    from identityhub.oidc import doctor

    declare_upstream("google", "google", name="Google", client_id="1234.apps.googleusercontent.com",
                     client_secret="google-secret-0123456789")
    asked = []

    def fake_fetch(url, budget, *, verify=True):
        asked.append(url)
        return doctor.Fetched(url, status=200, document={
            "issuer": "https://accounts.google.com", "authorization_endpoint": "a", "token_endpoint": "t",
            "jwks_uri": "j"}, date_skew=0.2)

    monkeypatch.setattr(doctor, "fetch_json", fake_fetch)
    report = doctor.Report()
    dates: list = []
    doctor.check_upstreams(report, doctor.Budget(10), dates)
    assert asked == ["https://accounts.google.com/.well-known/openid-configuration"]
    assert [c.line for c in report.checks] == [
        "ok upstream google: https://accounts.google.com/.well-known/openid-configuration answers and names "
        "https://accounts.google.com"]
    assert dates == [("accounts.google.com", 0.2)]  # an HTTPS answer: it counts for the clock


def test_issuer_url_unreachable(healthy, settings):
    port = _closed_port()
    settings.HUB_ISSUER = f"http://127.0.0.1:{port}"
    status, lines = run_doctor()
    checks = check_lines(lines)
    assert checks["issuer"] == (
        f"fail issuer: http://127.0.0.1:{port}/.well-known/openid-configuration: connection refused")
    assert checks["signing key"].endswith(" loaded (RS256)")  # nothing published to compare with
    assert status == 1


def test_issuer_mismatch(healthy, settings):
    """Another name for the same hub: the document names the issuer the hub was set up with."""
    other = healthy.replace("localhost", "127.0.0.1")
    settings.HUB_ISSUER = other
    status, lines = run_doctor()
    assert check_lines(lines)["issuer"] == (
        f'fail issuer: {other}/.well-known/openid-configuration names the issuer "{healthy}", not HUB_ISSUER '
        f"{other} (a proxy or another hub answering there?)")
    assert status == 1


def test_plain_http_outside_loopback_fails(db, settings, monkeypatch):
    from identityhub.oidc import doctor

    settings.HUB_ISSUER = "http://id.example.com"
    monkeypatch.setattr(doctor, "fetch_json", lambda url, budget, verify=True: doctor.Fetched(
        url, status=200, document={"issuer": "http://id.example.com"}))
    report = doctor.Report()
    doctor.check_issuer(report, doctor.Budget(10), [])
    assert [c.line for c in report.checks][1] == (
        "fail tls: plain http (http://id.example.com): the issuer must be https outside loopback")


def test_a_bad_certificate_fails_naming_the_tls_error(db, settings, https_front):
    settings.HUB_ISSUER = https_front.url
    status, lines = run_doctor()
    checks = check_lines(lines)
    host = https_front.url.removeprefix("https://")
    assert checks["tls"] == f"fail tls: {host}: certificate verify failed: self-signed certificate"
    # The rest is still said: the document, read without checking the certificate, names this issuer.
    assert checks["issuer"] == (
        f"ok issuer: {https_front.url}/.well-known/openid-configuration answers and names this issuer")
    assert status == 1


def test_a_trusted_certificate_is_ok_and_its_expiry_shown(db, settings, https_front_90_days, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", https_front_90_days.cert_file)
    settings.HUB_ISSUER = https_front_90_days.url
    _, lines = run_doctor()
    host = https_front_90_days.url.removeprefix("https://")
    assert re.fullmatch(rf"ok tls: {re.escape(host)}: the certificate is valid until \d{{4}}-\d\d-\d\d",
                        check_lines(lines)["tls"])


def test_a_certificate_about_to_expire_is_a_warning(db, settings, https_front, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", https_front.cert_file)  # valid one day
    settings.HUB_ISSUER = https_front.url
    _, lines = run_doctor()
    host = https_front.url.removeprefix("https://")
    assert re.fullmatch(rf"warn tls: {re.escape(host)}: the certificate is valid but expires on \d{{4}}-\d\d-\d\d, "
                        r"in 0 days: is its renewal working\?", check_lines(lines)["tls"])


@pytest.mark.parametrize(("skew", "status", "words"), [
    (2, "ok", None), (45, "warn", "behind"), (-45, "warn", "ahead of"), (400, "fail", "behind"),
])
def test_the_clock_against_the_date_of_https_answers(db, settings, https_front, monkeypatch, skew, status, words):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", https_front.cert_file)
    settings.HUB_ISSUER = https_front.url
    https_front.skew = skew  # the server's clock is `skew` seconds ahead of ours
    _, lines = run_doctor()
    line = check_lines(lines)["clock"]
    if words is None:
        assert re.fullmatch(r"ok clock: within [1-3] s of 127\.0\.0\.1", line), line
    else:
        seconds = abs(skew)
        assert re.fullmatch(rf"{status} clock: the local clock is ({seconds - 1}|{seconds}|{seconds + 1}) s {words} "
                            r"127\.0\.0\.1: set up time sync \(NTP\)", line), line


def test_no_date_header_means_the_clock_could_not_be_checked(db, settings, https_front, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", https_front.cert_file)
    settings.HUB_ISSUER = https_front.url
    https_front.send_date = False
    _, lines = run_doctor()
    assert check_lines(lines)["clock"] == "warn clock: could not check: no HTTPS answer carried a Date header"


def test_the_whole_run_is_bounded(healthy, doctor_dsm):
    """A NAS that never answers costs at most the per-call timeout; checks past the budget are skipped."""
    import time

    from identityhub.oidc import doctor

    doctor_dsm.fault("sleep", seconds=30)
    started = time.monotonic()
    report = doctor.run_checks(budget=3)
    elapsed = time.monotonic() - started
    assert elapsed < 8, elapsed
    assert any(c.what == "nas ds923" and c.status == "fail" for c in report.checks), [c.line for c in report.checks]


def test_checks_past_the_budget_are_not_run(healthy):
    from identityhub.oidc import doctor

    report = doctor.run_checks(budget=0)
    lines = {c.what: c.line for c in report.checks}
    assert lines["nas ds923"] == "warn nas ds923: not checked: the doctor's 0 s ran out"
    assert lines["issuer"].startswith("fail issuer: ") and "not checked" in lines["issuer"]


def test_a_database_without_migrations_stops_early(db, monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    from identityhub.oidc import doctor

    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: [("x", False)] * 3)
    report = doctor.run_checks()
    assert [c.line for c in report.checks] == ["fail database: 3 migrations not applied: run manage.py migrate"]


@pytest.mark.parametrize("language", ["fr", "de"])
def test_the_nas_line_names_the_nas_once_in_every_language(healthy, language):
    from django.utils import translation

    with translation.override(language):
        _, lines = run_doctor()
    line = next(line for line in lines if line.startswith("ok nas ds923"))
    assert line.count("ds923") == 1 and "DSM 7.2.2-72806 Update 3" in line, line
