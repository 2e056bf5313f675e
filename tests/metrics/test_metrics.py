"""`/metrics`: the token gate, and values that change after real sign-ins, refusals, token exchanges and
syncs; bounded labels; the multiprocess design (several processes, one sum)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import DSM_SECRET, exchange, get_code, signed_in, upstream_round_trip
from tests.fakes.dsm import FakeDSM
from tests.fakes.oidc_upstream import Identity

TOKEN = "metrics-token-0123456789abcdefghij"

pytestmark = pytest.mark.django_db


@pytest.fixture
def metrics_on(settings):
    settings.HUB_METRICS_TOKEN = TOKEN


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- the gate -----------------------------------------------------------------------------------------
def test_without_hub_metrics_token_metrics_is_a_404(client, settings):
    settings.HUB_METRICS_TOKEN = None
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "])
def test_a_missing_or_wrong_token_is_a_401(client, metrics_on, header):
    kwargs = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"hub_" not in response.content


def test_the_token_is_compared_in_constant_time(monkeypatch, client, metrics_on):
    import hmac

    from identityhub import metrics

    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(metrics.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    client.get("/metrics", HTTP_AUTHORIZATION="Bearer guess")
    assert compared == [(b"guess", TOKEN.encode())]


def test_the_right_token_gets_the_prometheus_text_format(client, metrics_on):
    client.get("/healthz")
    samples = scrape(client)
    assert value(samples, "hub_request_duration_seconds_count", view="healthz", method="GET", status="2xx") >= 1
    names = {name for name, _ in samples}
    assert any(name.startswith("hub_request_duration_seconds") for name in names)


# --- values after real events ---------------------------------------------------------------------------
def test_sign_ins_and_refusals_by_reason(client, metrics_on, upstream_provider, google_like, people):
    before = scrape(client)
    upstream_provider.identity = Identity(sub="g-1", email="mael@example.com")
    assert upstream_round_trip(client).status_code == 302
    client.logout()
    upstream_provider.identity = Identity(sub="g-9", email="stranger@example.net")
    assert upstream_round_trip(client).status_code == 403
    after = scrape(client)
    assert value(after, "hub_sign_ins_total", method="google") - value(before, "hub_sign_ins_total",
                                                                       method="google") == 1
    assert value(after, "hub_refusals_total", reason="unknown_person") - value(
        before, "hub_refusals_total", reason="unknown_person") == 1


def test_tokens_issued_by_client(client, metrics_on, dsm_client, mael):
    signed_in(client, mael)
    before = scrape(client)
    for _ in range(2):
        response = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), DSM_SECRET)
        assert response.status_code == 200, response.content
    after = scrape(client)
    labels = {"client_id": "ds923-dsm", "grant": "authorization_code"}
    assert value(after, "hub_tokens_issued_total", **labels) - value(before, "hub_tokens_issued_total", **labels) == 2
    token = {"view": "oauth2_provider:token", "method": "POST", "status": "2xx"}
    assert value(after, "hub_request_duration_seconds_count", **token) - value(
        before, "hub_request_duration_seconds_count", **token) == 2


def test_a_refused_token_exchange_is_counted_by_reason(client, metrics_on, dsm_client, mael, nas):
    from synology.models import DSMAccount

    signed_in(client, mael)
    code = get_code(client, "ds923-dsm")
    DSMAccount.objects.filter(nas=nas, user=mael).update(present=False)  # gone from the NAS meanwhile
    before = scrape(client)
    assert exchange(client, "ds923-dsm", code, DSM_SECRET).status_code == 400
    after = scrape(client)
    assert value(after, "hub_refusals_total", reason="no_nas_account") - value(
        before, "hub_refusals_total", reason="no_nas_account") == 1


def test_sync_outcomes_durations_and_last_success_come_from_the_database(client, metrics_on, household):
    from django.utils import timezone

    from synology.models import NAS, SyncRun
    from synology.services import declare_nas
    from synology.sync import sync_nas

    with FakeDSM("dsm7") as fake:
        fake.add_user("mael.valais", email="mael@example.com")
        declare_nas("ds923", household=household, base_url=fake.url, service_username="hub-sync",
                    service_password="s3cret-Pa55word!")
        assert sync_nas("ds923", timeout=(2, 2)).ok
    assert sync_nas("ds923", timeout=(1, 1), lock_wait=0).outcome == "unreachable"  # the fake is gone
    # A run from yesterday counts in yesterday's series only (the counters restart at 00:00 UTC).
    SyncRun.objects.create(nas_id="ds923", started=timezone.now() - timedelta(days=1, hours=1),
                           finished=timezone.now() - timedelta(days=1), outcome="ok", duration_ms=10)
    samples = scrape(client)
    assert value(samples, "hub_sync_runs_total", nas="ds923", outcome="ok") == 1
    assert value(samples, "hub_sync_runs_total", nas="ds923", outcome="unreachable") == 1
    assert value(samples, "hub_sync_duration_seconds_count", nas="ds923") == 2
    assert value(samples, "hub_sync_duration_seconds_bucket", nas="ds923", le="+Inf") == 2
    assert value(samples, "hub_sync_duration_seconds_bucket", nas="ds923", le="600.0") == 2
    assert value(samples, "hub_sync_duration_seconds_sum", nas="ds923") > 0
    nas = NAS.objects.get(pk="ds923")
    assert value(samples, "hub_sync_last_success_timestamp_seconds", nas="ds923") == pytest.approx(
        nas.last_success_at.timestamp())
    assert value(samples, "hub_sync_consecutive_failures", nas="ds923") == 1
    assert value(samples, "hub_nas_enabled", nas="ds923") == 1


def test_a_nas_never_synced_reports_zero_as_its_last_success(client, metrics_on, nas):
    samples = scrape(client)
    assert ("hub_sync_last_success_timestamp_seconds", (("nas", "ds923"),)) in samples
    assert value(samples, "hub_sync_last_success_timestamp_seconds", nas="ds923") == 0


# --- bounded labels -----------------------------------------------------------------------------------
def test_unknown_urls_share_one_label_and_no_path_is_a_label(client, metrics_on):
    before = scrape(client)
    for path in ("/nope-1", "/nope-2/deeper", "/.env", "/wp-login.php?x=1"):
        assert client.get(path).status_code == 404
    after = scrape(client)
    unmatched = {"view": "unmatched", "method": "GET", "status": "4xx"}
    assert value(after, "hub_request_duration_seconds_count", **unmatched) - value(
        before, "hub_request_duration_seconds_count", **unmatched) == 4
    views = {dict(labels).get("view") for name, labels in after if name.startswith("hub_request_duration")}
    assert not any(v and "/" in v for v in views), views


def test_odd_methods_are_one_label(client, metrics_on):
    status = f"{client.generic('PROPFIND', '/healthz').status_code // 100}xx"
    samples = scrape(client)
    assert value(samples, "hub_request_duration_seconds_count", view="healthz", method="other", status=status) >= 1
    assert not any(dict(labels).get("method") == "PROPFIND" for _, labels in samples)


def test_the_console_is_one_label(client, metrics_on, mael):
    signed_in(client, mael)
    client.get("/admin/")
    client.get("/admin/synology/nas/")
    samples = scrape(client)
    views = {dict(labels).get("view") for name, labels in samples if name.startswith("hub_request_duration")}
    assert "admin" in views
    assert not any(v and v.startswith("admin:") for v in views)


def test_a_label_takes_at_most_max_label_values_values():
    from identityhub import metrics

    probe = Counter("hub_probe", "test only", ["reason"], registry=None)
    for i in range(metrics.MAX_LABEL_VALUES + 50):
        metrics._child(probe, f"reason-{i}").inc()
    reasons = {sample.labels["reason"] for family in probe.collect() for sample in family.samples
               if sample.name == "hub_probe_total"}
    assert len(reasons) == metrics.MAX_LABEL_VALUES + 1
    assert "other" in reasons


def test_no_secret_email_or_token_appears_in_the_metrics(client, metrics_on, dsm_client, mael):
    signed_in(client, mael)
    response = exchange(client, "ds923-dsm", get_code(client, "ds923-dsm"), DSM_SECRET)
    tokens = response.json()
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    for secret in (DSM_SECRET, mael.email, tokens["access_token"], tokens["id_token"], TOKEN):
        assert secret not in text


# --- across processes -----------------------------------------------------------------------------------
PROCESS = textwrap.dedent("""
    import django
    django.setup()
    from identityhub import metrics
    assert metrics.MULTIPROCESS_DIR
    for _ in range({n}):
        metrics.count_event("token_issued", "", "ds923-dsm", "", {{"grant": "authorization_code"}})
        metrics.count_event("refusal", "no_nas_account", "ds923-dsm", "", {{}})
    metrics._child(metrics.REQUEST_LATENCY, "oauth2_provider:token", "POST", "2xx").observe(0.02)
""")
RENDER = textwrap.dedent("""
    import django
    django.setup()
    from identityhub import metrics
    print(metrics.exposition(collectors=False).decode())
""")


def test_several_processes_add_up_in_one_scrape(tmp_path):
    """What gunicorn's workers and the Celery worker do: each counts in its own file, a scrape sums them."""
    env = {**os.environ, "HUB_METRICS_TOKEN": TOKEN, "HUB_METRICS_DIR": str(tmp_path / "metrics"),
           "DJANGO_SETTINGS_MODULE": "identityhub.settings"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    for n in (3, 4):
        subprocess.run([sys.executable, "-c", PROCESS.format(n=n)], env=env, check=True, timeout=60, cwd=os.getcwd())
    assert len(list((tmp_path / "metrics").glob("*.db"))) >= 2
    out = subprocess.run([sys.executable, "-c", RENDER], env=env, check=True, timeout=60, capture_output=True,
                         text=True, cwd=os.getcwd()).stdout
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(out) for s in family.samples}
    assert value(samples, "hub_tokens_issued_total", client_id="ds923-dsm", grant="authorization_code") == 7
    assert value(samples, "hub_refusals_total", reason="no_nas_account") == 7
    assert value(samples, "hub_request_duration_seconds_count", view="oauth2_provider:token", method="POST",
                 status="2xx") == 2


def test_an_unwritable_metrics_folder_falls_back_to_counting_per_process(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = {**os.environ, "HUB_METRICS_TOKEN": TOKEN, "HUB_METRICS_DIR": str(blocker / "metrics"),
           "DJANGO_SETTINGS_MODULE": "identityhub.settings"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    code = PROCESS.format(n=2).replace("assert metrics.MULTIPROCESS_DIR", "assert not metrics.MULTIPROCESS_DIR")
    code += "\nprint(metrics.exposition(collectors=False).decode())\n"
    result = subprocess.run([sys.executable, "-c", code], env=env, timeout=60, capture_output=True, text=True,
                            cwd=os.getcwd())
    assert result.returncode == 0, result.stderr
    assert "cannot use" in result.stderr
    assert 'hub_tokens_issued_total{client_id="ds923-dsm",grant="authorization_code"} 2.0' in result.stdout
