"""`hub doctor` and the console's Health checks: is this deployment working, end to end?

From inside the deployment, one `Check` per line — `ok|warn|fail what: detail`:

- `database` — it answers and every migration is applied; `redis` with REDIS_URL;
- `issuer` — `<HUB_ISSUER>/.well-known/openid-configuration` answers at the public URL and names
  HUB_ISSUER as its `issuer` (what DSM and every app check);
- `tls` — a valid certificate (what `requests` trusts: certifi's bundle or REQUESTS_CA_BUNDLE, as
  for the hub's own calls to upstreams); plain http is a `warn` on loopback, a `fail` elsewhere; a
  certificate that expires within 14 days is a `warn`;
- `upstream <id>` — each enabled upstream's discovery answers and names its issuer (Google's fixed
  one for type google); the mock upstream outside development is a `warn` (refused there, skipped);
- `clock` — the local clock against the `Date` headers of the HTTPS answers above: `warn` above
  30 s, `fail` above 5 min (ID tokens carry iat/exp: RPs refuse them when the clocks disagree);
- `nas <id>` — reachable, its service account logs in and may list users, DSM version
  (`synology.services.test_connection`, audited as the console's button is); a disabled NAS is a
  `warn`;
- `signing key` — loaded (and published in the issuer's JWKS when the issuer answered).

Then the DSM values of each DSM app (`connect.dsm_sso_settings`, the console's Connect DSM page).
Every network call has 5 s and the whole run RUN_BUDGET seconds; checks left when it is spent are
`warn … not checked`. No check prints a secret: service passwords and client secrets are only used.
Details are in the active language (the console's); status words and names stay as they are.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import os
import re
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
import urllib3
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import GOOGLE_ISSUER, Upstream
from identityhub.crypto import DecryptionError
from synology.models import NAS
from synology.services import test_connection

from .connect import SettingValue, dsm_sso_settings

OK, WARN, FAIL = "ok", "warn", "fail"
CALL_TIMEOUT = 5.0  # seconds, every network call
NAS_DEADLINE = 15.0  # one NAS's whole test (discovery, login, version, listing, logout)
RUN_BUDGET = 60.0  # the whole run
CLOCK_WARN = 30.0
CLOCK_FAIL = 300.0
CERT_WARN_DAYS = 14
MAX_DOCUMENT = 1024 * 1024
WELL_KNOWN = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class Check:
    status: str  # ok | warn | fail
    what: str  # issuer, tls, clock, upstream google, nas ds923, signing key …
    detail: str

    @property
    def line(self) -> str:
        return f"{self.status} {self.what}: {self.detail}"


@dataclass(frozen=True)
class DSMApp:
    client_id: str
    name: str
    nas_id: str
    values: list[SettingValue]


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    dsm_apps: list[DSMApp] = field(default_factory=list)
    on_check: Callable[[Check], None] | None = None  # the command prints each line as it comes

    @property
    def failed(self) -> bool:
        return any(check.status == FAIL for check in self.checks)

    def add(self, status: str, what: str, detail: str) -> Check:
        check = Check(status, what, detail)
        self.checks.append(check)
        if self.on_check is not None:
            self.on_check(check)
        return check


class Budget:
    """The run's time: each call gets at most CALL_TIMEOUT, never more than what is left."""

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds
        self.seconds = seconds

    def left(self) -> float:
        return self.ends - time.monotonic()

    def call(self, limit: float = CALL_TIMEOUT) -> float:
        return max(0.0, min(limit, self.left()))

    @property
    def spent(self) -> bool:
        return self.left() <= 0.2


def run_checks(*, hub_wide: bool = True, nas_ids: list[str] | None = None, budget: float = RUN_BUDGET,
               on_check: Callable[[Check], None] | None = None) -> Report:
    """Every check, in order. `hub_wide=False` leaves out what only an operator can fix (database,
    issuer, TLS, upstreams, clock, signing key); `nas_ids` limits the NAS checks and DSM apps (None: all)."""
    report = Report(on_check=on_check)
    clock = Budget(budget)
    dates: list[tuple[str, float]] = []  # (host, local clock minus the server's Date) of HTTPS answers
    found: dict = {}
    if hub_wide:
        if not _guarded(report, "database", check_database, report):
            return report  # every other check reads the database
        _guarded(report, "issuer", lambda: found.update(discovery=check_issuer(report, clock, dates)))
        _guarded(report, "upstreams", check_upstreams, report, clock, dates)
        _guarded(report, "clock", lambda: report.add(*clock_check(dates)))
    _guarded(report, "nas", check_nases, report, clock, nas_ids)
    if hub_wide:
        _guarded(report, "signing key", check_signing_key, report, clock, found.get("discovery"))
    _guarded(report, "dsm apps", lambda: setattr(report, "dsm_apps", dsm_apps(nas_ids)))
    return report


def _guarded(report: Report, what: str, check: Callable, *args) -> bool:
    """Run one stage; an unexpected error is that stage's `fail` line, and the next stages still run."""
    try:
        result = check(*args)
    except Exception as error:
        report.add(FAIL, what, _("the check itself failed: %(error)s") % {
            "error": f"{type(error).__name__}: {_one_line(error)}"})
        return False
    return result is not False


# --- database ----------------------------------------------------------------------------------------
def check_database(report: Report) -> bool:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as error:  # any database fault: say which, never crash the doctor
        report.add(FAIL, "database", _("does not answer: %(error)s") % {"error": _one_line(error)})
        return False
    if pending:
        report.add(FAIL, "database", ngettext(
            "%(count)s migration not applied: run manage.py migrate",
            "%(count)s migrations not applied: run manage.py migrate", len(pending)) % {"count": len(pending)})
        return False
    else:
        report.add(OK, "database", _("%(vendor)s answers; every migration is applied") % {"vendor": connection.vendor})
    if settings.REDIS_URL:
        from django.core.cache import cache

        try:
            cache.set("identityhub:doctor", "1", 5)
            answered = cache.get("identityhub:doctor") == "1"
        except Exception as error:
            report.add(FAIL, "redis", _("does not answer: %(error)s") % {"error": _one_line(error)})
            return True
        if answered:
            report.add(OK, "redis", _("answers"))
        else:
            report.add(FAIL, "redis", _("a value written could not be read back"))
    return True


# --- HTTP, bounded -----------------------------------------------------------------------------------
@dataclass
class Fetched:
    url: str
    status: int = 0
    document: dict | None = None
    location: str = ""
    error: str = ""  # why there is no answer (or no JSON document)
    tls_error: str = ""  # set when the certificate was refused
    date_skew: float | None = None  # local clock minus the answer's Date header


def fetch_json(url: str, budget: Budget, *, verify: bool = True) -> Fetched:
    """GET `url` (no redirects followed), within CALL_TIMEOUT for the whole call, a JSON object or why not."""
    result = Fetched(url)
    limit = budget.call()
    if limit <= 0:
        result.error = _("not checked: the doctor's %(seconds)s s ran out") % {"seconds": int(budget.seconds)}
        return result

    def call() -> None:
        started = time.time()
        try:
            with warnings.catch_warnings():
                if not verify:  # the doctor's second look after a refused certificate, said so in its line
                    warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                response = requests.get(url, timeout=(limit, limit), allow_redirects=False, stream=True, verify=verify,
                                        headers={"Accept": "application/json"})
            with response:
                body = response.raw.read(MAX_DOCUMENT + 1, decode_content=True)
                result.status = response.status_code
                result.location = response.headers.get("Location", "")
                result.date_skew = _skew(response.headers.get("Date"), started, time.time())
        except requests.exceptions.SSLError as error:
            result.tls_error = tls_reason(error)
            result.error = result.tls_error
            return
        except requests.RequestException as error:
            result.error = network_reason(error, limit)
            return
        if 300 <= result.status < 400:
            result.error = _("answered HTTP %(status)s, a redirect to %(location)s") % {
                "status": result.status, "location": result.location or "?"}
        elif result.status != 200:
            result.error = _("answered HTTP %(status)s") % {"status": result.status}
        elif len(body) > MAX_DOCUMENT:
            result.error = _("answered more than 1 MiB")
        else:
            try:
                document = json.loads(body)
            except ValueError:
                result.error = _("answered something that is not JSON")
                return
            if not isinstance(document, dict):
                result.error = _("answered JSON that is not an object")
                return
            result.document = document

    worker = threading.Thread(target=call, daemon=True, name="hub-doctor-fetch")
    worker.start()
    worker.join(limit + 0.5)
    if worker.is_alive():  # a server dripping its answer: requests' timeouts are per read
        return Fetched(url, error=_("did not answer within %(seconds)s s") % {"seconds": _seconds(limit)})
    return result


def _skew(date_header: str | None, started: float, finished: float) -> float | None:
    if not date_header:
        return None
    try:
        server = email.utils.parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return None
    if server.tzinfo is None:
        server = server.replace(tzinfo=UTC)
    # Date has whole seconds (truncated): its middle is half a second later.
    return (started + finished) / 2 - (server.timestamp() + 0.5)


def _seconds(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def _chain(error: BaseException):
    seen = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None)]
                     + [arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)])


def tls_reason(error: BaseException) -> str:
    """The TLS error as openssl words it: `certificate verify failed: self-signed certificate`."""
    for cause in _chain(error):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {cause.verify_message or cause.reason}"
    for cause in _chain(error):
        if isinstance(cause, ssl.SSLError):
            return _one_line(cause.reason or cause)
    return _one_line(error)


def network_reason(error: BaseException, limit: float) -> str:
    if isinstance(error, requests.exceptions.Timeout):
        return _("did not answer within %(seconds)s s") % {"seconds": _seconds(limit)}
    for cause in _chain(error):
        if isinstance(cause, ConnectionRefusedError):
            return _("connection refused")
        if isinstance(cause, socket.gaierror):
            return _("the host name does not resolve (DNS)")
        if isinstance(cause, TimeoutError):
            return _("did not answer within %(seconds)s s") % {"seconds": _seconds(limit)}
    return _one_line(error)


def _one_line(error: BaseException | str) -> str:
    return " ".join(str(error).split())[:300]


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --- issuer and TLS --------------------------------------------------------------------------------
def check_issuer(report: Report, budget: Budget, dates: list) -> dict | None:
    issuer = settings.HUB_ISSUER.rstrip("/")
    parts = urlsplit(issuer)
    host = parts.hostname or ""
    url = issuer + WELL_KNOWN
    fetched = fetch_json(url, budget)
    tls_error = fetched.tls_error
    if tls_error:
        # Say whether the rest would work: the same document without checking the certificate.
        fetched = fetch_json(url, budget, verify=False)
    if parts.scheme == "https" and fetched.date_skew is not None:
        dates.append((host, fetched.date_skew))
    document = fetched.document
    if document is None:
        report.add(FAIL, "issuer", _("%(url)s: %(reason)s") % {"url": url, "reason": fetched.error})
    elif str(document.get("issuer", "")).rstrip("/") != issuer:
        report.add(FAIL, "issuer", _("%(url)s names the issuer %(found)s, not HUB_ISSUER %(issuer)s (a proxy or "
                                     "another hub answering there?)") % {
            "url": url, "found": json.dumps(document.get("issuer")), "issuer": issuer})
        document = None
    else:
        report.add(OK, "issuer", _("%(url)s answers and names this issuer") % {"url": url})

    if parts.scheme == "http":
        if is_loopback(host):
            report.add(WARN, "tls", _("plain http on loopback (%(issuer)s): fine for development; browsers, DSM and "
                                      "Google need an https issuer") % {"issuer": issuer})
        else:
            report.add(FAIL, "tls", _("plain http (%(issuer)s): the issuer must be https outside loopback") % {
                "issuer": issuer})
    elif tls_error:
        report.add(FAIL, "tls", _("%(host)s: %(error)s") % {"host": parts.netloc, "error": tls_error})
    elif document is None and not fetched.status:
        report.add(WARN, "tls", _("not checked: the issuer did not answer"))
    else:
        report.add(*certificate_check(parts, budget))
    return document


def certificate_check(parts, budget: Budget) -> tuple[str, str, str]:
    """The certificate was accepted; when does it expire? (A direct TLS handshake, same trust store.)"""
    host, port = parts.hostname, parts.port or 443
    limit = budget.call()
    try:
        cafile = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or _certifi()
        context = ssl.create_default_context(cafile=cafile)
        with socket.create_connection((host, port), timeout=limit) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            not_after = tls.getpeercert().get("notAfter")
        expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), tz=UTC)
    except Exception:  # a proxy in between, or no answer this time: the verified GET already passed
        return OK, "tls", _("%(host)s: the certificate is valid") % {"host": parts.netloc}
    days = int((expires - datetime.now(UTC)).total_seconds() // 86400)
    detail = {"host": parts.netloc, "date": expires.strftime("%Y-%m-%d"), "days": days}
    if days < CERT_WARN_DAYS:
        return WARN, "tls", ngettext("%(host)s: the certificate is valid but expires on %(date)s, in %(days)s day: "
                                     "is its renewal working?",
                                     "%(host)s: the certificate is valid but expires on %(date)s, in %(days)s days: "
                                     "is its renewal working?", days) % detail
    return OK, "tls", _("%(host)s: the certificate is valid until %(date)s") % detail


def _certifi() -> str | None:
    try:
        import certifi
    except ImportError:  # pragma: no cover - requests depends on it
        return None
    return certifi.where()


# --- upstreams ----------------------------------------------------------------------------------------
def check_upstreams(report: Report, budget: Budget, dates: list) -> None:
    upstreams = list(Upstream.objects.filter(enabled=True).order_by("position", "id"))
    if not upstreams:
        report.add(WARN, "upstreams", _("none enabled: only passkeys can sign in"))
    for upstream in upstreams:
        what = f"upstream {upstream.pk}"
        if upstream.type == Upstream.Type.MOCK:
            if settings.DEBUG:
                report.add(OK, what, _("the mock upstream (development only): nothing to fetch"))
            else:
                report.add(WARN, what, _("the mock upstream is refused unless HUB_DEBUG=1: skipped; disable or "
                                         "remove it"))
            continue
        problem = _upstream_settings_problem(upstream)
        if problem:
            report.add(FAIL, what, problem)
            continue
        issuer = (GOOGLE_ISSUER if upstream.type == Upstream.Type.GOOGLE else upstream.issuer).rstrip("/")
        url = issuer + WELL_KNOWN
        fetched = fetch_json(url, budget)
        if urlsplit(url).scheme == "https" and fetched.date_skew is not None:
            dates.append((urlsplit(url).hostname or "", fetched.date_skew))
        document = fetched.document
        if document is None:
            report.add(FAIL, what, _("%(url)s: %(reason)s") % {"url": url, "reason": fetched.error})
        elif str(document.get("issuer", "")).rstrip("/") != issuer:
            report.add(FAIL, what, _("%(url)s names the issuer %(found)s, not %(issuer)s") % {
                "url": url, "found": json.dumps(document.get("issuer")), "issuer": issuer})
        else:
            missing = [key for key in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not document.get(key)]
            if missing:
                report.add(FAIL, what, _("%(url)s lacks %(keys)s") % {"url": url, "keys": ", ".join(missing)})
            else:
                report.add(OK, what, _("%(url)s answers and names %(issuer)s") % {"url": url, "issuer": issuer})


def _upstream_settings_problem(upstream: Upstream) -> str:
    if not upstream.client_id:
        return _("no client id")
    try:
        secret = upstream.client_secret
    except DecryptionError:
        return _("its client secret cannot be decrypted with HUB_ENCRYPTION_KEY")
    if not secret:
        return _("no client secret")
    if upstream.type == Upstream.Type.OIDC and not upstream.issuer:
        return _("no issuer")
    return ""


# --- clock ----------------------------------------------------------------------------------------
def clock_check(dates: list[tuple[str, float]]) -> tuple[str, str, str]:
    if not dates:
        return (WARN, "clock", _("could not check: no HTTPS answer carried a Date header"))
    host, skew = max(dates, key=lambda item: abs(item[1]))
    hosts = ", ".join(sorted({h for h, _skew in dates}))
    seconds = round(abs(skew))
    if abs(skew) > CLOCK_FAIL:
        status = FAIL
    elif abs(skew) > CLOCK_WARN:
        status = WARN
    else:
        return (OK, "clock", _("within %(seconds)s s of %(hosts)s") % {"seconds": max(seconds, 1),
                                                                             "hosts": hosts})
    if skew > 0:
        detail = _("the local clock is %(seconds)s s ahead of %(host)s: set up time sync (NTP)")
    else:
        detail = _("the local clock is %(seconds)s s behind %(host)s: set up time sync (NTP)")
    return (status, "clock", detail % {"seconds": seconds, "host": host})


# --- NASes ----------------------------------------------------------------------------------------
def check_nases(report: Report, budget: Budget, nas_ids: list[str] | None) -> None:
    nases = NAS.objects.order_by("id")
    if nas_ids is not None:
        nases = nases.filter(pk__in=nas_ids)
    nases = list(nases)
    if not nases:
        report.add(WARN, "nas", _("none declared"))
    for nas in nases:
        what = f"nas {nas.pk}"
        if not nas.enabled:
            report.add(WARN, what, _("disabled: not synced, not checked"))
            continue
        if budget.spent:
            report.add(WARN, what, _("not checked: the doctor's %(seconds)s s ran out") % {
                "seconds": int(budget.seconds)})
            continue
        found = test_connection(nas, timeout=(CALL_TIMEOUT, CALL_TIMEOUT), deadline=max(1.0, min(NAS_DEADLINE,
                                                                                                 budget.left())))
        # "ds923: ok: DSM 7.2 …" or "ds923 (DSM 7.2): auth_failed: …" — in French with a no-break
        # space before each colon: the prefixes are matched whatever the spacing.
        detail = found.message
        prefix = re.match(rf"{re.escape(nas.pk)}(?: \(([^)]*)\))?\s*:\s*", detail)
        if prefix:
            detail = detail[prefix.end():]
            if prefix.group(1):
                detail = f"{prefix.group(1)}: {detail}"
        if found.ok:
            detail = re.sub(r"^ok\s*:\s*", "", detail)
        if found.ok and nas.tls_verify is False:
            detail += "; " + _("its TLS certificate is not verified (verify_tls: false)")
        report.add(OK if found.ok else FAIL, what, detail)


# --- signing key ----------------------------------------------------------------------------------
def check_signing_key(report: Report, budget: Budget, discovery: dict | None) -> None:
    from .keys import keyring

    try:
        ring = keyring()
    except Exception as error:
        report.add(FAIL, "signing key", _("cannot be loaded: %(error)s") % {
            "error": f"{type(error).__name__}: {_one_line(error)}"})
        return
    kid = ring.kid
    jwks_uri = (discovery or {}).get("jwks_uri")
    if not jwks_uri:
        report.add(OK, "signing key", _("%(kid)s loaded (RS256)") % {"kid": kid})
        return
    fetched = fetch_json(str(jwks_uri), budget)
    published = [key.get("kid") for key in (fetched.document or {}).get("keys", []) if isinstance(key, dict)]
    if fetched.document is None:
        report.add(FAIL, "signing key", _("%(kid)s loaded, but the JWKS %(url)s: %(reason)s") % {
            "kid": kid, "url": jwks_uri, "reason": fetched.error})
    elif kid not in published:
        report.add(FAIL, "signing key", _("%(kid)s loaded, but the JWKS at %(url)s does not publish it (another hub "
                                          "answering there?)") % {"kid": kid, "url": jwks_uri})
    else:
        report.add(OK, "signing key", _("%(kid)s loaded and published at %(url)s") % {"kid": kid, "url": jwks_uri})


# --- DSM values -----------------------------------------------------------------------------------
def dsm_apps(nas_ids: list[str] | None) -> list[DSMApp]:
    from .models import ClientProfile

    profiles = ClientProfile.objects.filter(nas__isnull=False).select_related("application").order_by(
        "application__client_id")
    if nas_ids is not None:
        profiles = profiles.filter(nas_id__in=nas_ids)
    return [DSMApp(p.application.client_id, p.application.name, p.nas_id, dsm_sso_settings(p.application))
            for p in profiles]


def format_dsm_values(report: Report) -> list[str]:
    """After the checks, the command prints the DSM values of each DSM app."""
    lines: list[str] = []
    for app in report.dsm_apps:
        lines.append("")
        lines.append(_("DSM values for %(client)s (%(name)s, NAS %(nas)s) — Control Panel → Domain/LDAP → SSO Client:")
                     % {"client": app.client_id, "name": app.name or app.client_id, "nas": app.nas_id})
        for value in app.values:
            shown = value.value or f"({value.note})"
            note = f"  ({value.note})" if value.value and value.note else ""
            lines.append(f"  {value.label}: {shown}{note}")
    return lines


def run_doctor(command, options) -> int:
    """`hub doctor`: exit 0 unless a check failed (1)."""
    report = run_checks(budget=options.get("budget") or RUN_BUDGET,
                        on_check=lambda check: command.stdout.write(check.line))
    for line in format_dsm_values(report):
        command.stdout.write(line)
    return 1 if report.failed else 0
