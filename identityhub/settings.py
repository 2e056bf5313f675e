"""Identity Hub settings: one module, every knob from an environment variable.

The variables are the contract of ../shared/DESIGN.md ("Environment"); docs/architecture.md
lists what each one changes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import re
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

from identityhub.loopback import DEBUG_REMOTE_OVERRIDE, is_loopback_host

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("HUB_VAR_DIR", BASE_DIR / "var"))


def env_flag(name: str, default: str = "0") -> bool:
    return os.environ.get(name, default).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


DEBUG = env_flag("HUB_DEBUG")
HUB_CONFIG = os.environ.get("HUB_CONFIG") or None


def _validate_only(argv: list[str]) -> bool:
    """`manage.py hub check [FILE]` and `hub schema`: validators that read a file and touch nothing, so
    they run without the hub's secrets and without an issuer (DESIGN: "validates the file, touches
    nothing"). Every other command and every serving process still requires them."""
    return (len(argv) >= 3 and Path(argv[0]).name in {"manage.py", "django-admin"} and argv[1] == "hub"
            and argv[2] in {"check", "schema"})


HUB_VALIDATE_ONLY = _validate_only(sys.argv)


# --- secret key ---------------------------------------------------------------------------
def _debug_secret_key() -> str:
    """In development, generate the key once into var/secret_key (atomic, race-free)."""
    path = VAR_DIR / "secret_key"
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        candidate = secrets.token_urlsafe(50)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(candidate)
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # fails if another process won the race: keep theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("HUB_SECRET_KEY") or (_debug_secret_key() if DEBUG else "")
if not SECRET_KEY and HUB_VALIDATE_ONLY:
    SECRET_KEY = secrets.token_urlsafe(50)  # this process only: a validator signs and stores nothing
if not SECRET_KEY:
    raise ImproperlyConfigured("HUB_SECRET_KEY is required unless HUB_DEBUG=1")

# Fernet keys for secrets at rest: the first encrypts, all decrypt (rotation).
_encryption_keys = env_list("HUB_ENCRYPTION_KEY")
if not _encryption_keys:
    if not DEBUG and not HUB_VALIDATE_ONLY:  # a validator decrypts nothing
        raise ImproperlyConfigured("HUB_ENCRYPTION_KEY is required unless HUB_DEBUG=1")
    _derived = hashlib.sha256(b"identityhub-encryption:" + SECRET_KEY.encode()).digest()
    _encryption_keys = [base64.urlsafe_b64encode(_derived).decode()]
HUB_ENCRYPTION_KEYS = _encryption_keys


# --- issuer -------------------------------------------------------------------------------
def _issuer_from_config(path: str | None) -> str | None:
    """Read only the `issuer` key of the config file (the full loader lives in identityhub.config)."""
    if not path or not Path(path).is_file():
        return None
    match = re.search(r"^issuer:\s*['\"]?([^'\"#\s]+)", Path(path).read_text(), re.MULTILINE)
    if not match:
        return None
    value = match.group(1)
    env_ref = re.fullmatch(r"\$\{(\w+)(?::-([^}]*))?\}", value)
    if env_ref:
        return os.environ.get(env_ref.group(1)) or env_ref.group(2)
    return value


HUB_ISSUER_FROM_ENV = bool(os.environ.get("HUB_ISSUER"))
HUB_ISSUER = (
    os.environ.get("HUB_ISSUER")
    # `hub check` compares a file's issuer with an explicit HUB_ISSUER only, and reports a bad one itself
    or (None if HUB_VALIDATE_ONLY else _issuer_from_config(HUB_CONFIG))
    or ("http://127.0.0.1:8000" if DEBUG or HUB_VALIDATE_ONLY else "")
).rstrip("/")
if not HUB_ISSUER:
    raise ImproperlyConfigured("HUB_ISSUER (or the `issuer` of HUB_CONFIG) is required")
_issuer = urlsplit(HUB_ISSUER)
if _issuer.scheme not in {"http", "https"} or not _issuer.hostname:
    raise ImproperlyConfigured(f"HUB_ISSUER must be an absolute http(s) URL, got {HUB_ISSUER!r}")
# When the issuer carries a path (https://example.com/id), every hub URL lives under it;
# the proxy forwards that path unchanged, so the URLconf itself is mounted under the prefix.
HUB_URL_PREFIX = _issuer.path.strip("/")

# Development mode lets anyone who reaches the hub sign in as any person (the mock upstream): it
# stays on loopback (here the issuer; runserver's address, the image's gunicorn and the mock views
# check too) unless this loudly named override is set (IdentityHubConfig.ready logs a warning).
HUB_DEBUG_ALLOW_REMOTE = DEBUG and env_flag(DEBUG_REMOTE_OVERRIDE)
if DEBUG and not HUB_DEBUG_ALLOW_REMOTE and not is_loopback_host(_issuer.hostname):
    raise ImproperlyConfigured(
        f"HUB_DEBUG=1 needs a loopback issuer (http://127.0.0.1:PORT, localhost or [::1]), got {HUB_ISSUER!r}: "
        f"development mode lets anyone who reaches the hub sign in as any person. Set {DEBUG_REMOTE_OVERRIDE}=1 "
        "to run it there anyway."
    )

ALLOWED_HOSTS = env_list("HUB_ALLOWED_HOSTS") or [_issuer.hostname, "127.0.0.1", "localhost"]

HUB_BEHIND_PROXY = env_flag("HUB_BEHIND_PROXY")  # also: rate limits count the last X-Forwarded-For hop
if HUB_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

_secure = _issuer.scheme == "https"
SESSION_COOKIE_SECURE = _secure
CSRF_COOKIE_SECURE = _secure
SESSION_COOKIE_NAME = "hub_session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = int(os.environ.get("HUB_SESSION_AGE", str(14 * 24 * 3600)))
SESSION_COOKIE_PATH = f"/{HUB_URL_PREFIX}/" if HUB_URL_PREFIX else "/"
CSRF_TRUSTED_ORIGINS = [f"{_issuer.scheme}://{_issuer.netloc}"]
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "identityhub.views.csrf_failure"
# Every page's stylesheet and scripts are files of the hub: no inline script or style, nothing from
# elsewhere. form-action also governs where a form's redirect may go (Chromium enforces it): the
# consent and sign-out confirmation pages add the one client origin they redirect to
# (identityhub.oidc.views.allow_form_redirect).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": [NONE],
    },
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"


def hsts_seconds(issuer_scheme: str, configured: str | None) -> int:
    """Strict-Transport-Security max-age: HUB_HSTS_SECONDS (default one year) for an https issuer,
    never for an http one (development on loopback: HSTS there would pin 127.0.0.1 to https)."""
    if issuer_scheme != "https":
        return 0
    seconds = int(configured) if configured not in (None, "") else 365 * 24 * 3600
    if seconds < 0:
        raise ImproperlyConfigured(f"HUB_HSTS_SECONDS must be 0 or more, got {configured!r}")
    return seconds


# Django's SecurityMiddleware sends it on https requests (behind the proxy: with HUB_BEHIND_PROXY=1).
SECURE_HSTS_SECONDS = hsts_seconds(_issuer.scheme, os.environ.get("HUB_HSTS_SECONDS"))
# Off unless asked: the hub's host is often a name under a household domain whose other names
# (the NAS's own DSM page, a router, a printer) may still be plain http; includeSubDomains would
# make browsers refuse them for a year.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_flag("HUB_HSTS_INCLUDE_SUBDOMAINS")

# --- apps ---------------------------------------------------------------------------------
INSTALLED_APPS = [
    "console",  # before the admin: its templates override the admin's
    "console.apps.HubAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "identityhub",  # before staticfiles: its runserver (loopback only in debug) wins over staticfiles'
    "django.contrib.staticfiles",
    "console.apps.HubDOTConfig",  # django-oauth-toolkit, labelled "Apps" in the console
    "social_django",
    "identityhub.oidc",
    "accounts",
    "synology",
    "joining",  # invitations and access requests (above accounts, synology and the provider)
    "django_ratelimit",  # its system check of the cache (silenced below, deliberately)
]
if DEBUG:
    INSTALLED_APPS.append("identityhub.demo")  # the demo relying party of `make run`

MIDDLEWARE = [
    "identityhub.metrics.RequestMetricsMiddleware",  # first: times the whole stack (a few µs)
    "django.middleware.security.SecurityMiddleware",
    "identityhub.middleware.HubCSPMiddleware",  # django-csp's, the settings' policy built once
    "identityhub.middleware.RefuseNulBytesMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",  # Accept-Language, or the switcher's cookie
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "identityhub.urls"
WSGI_APPLICATION = "identityhub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "identityhub" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'hub.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Persistent connections, as on PostgreSQL (opening one cost ~2 ms a request: PRAGMAs, schema,
    # a WAL checkpoint at the last close). Safe: Django keeps one connection per thread, each made
    # with the OPTIONS below; wsgi.py closes the one the app load opened before gunicorn forks
    # (--preload), so no connection crosses a fork. SQLite's auto-checkpoint bounds the WAL.
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers (sign-ins) run while the sync writes; IMMEDIATE takes the write
        # lock up front so two writers queue on the busy timeout instead of failing.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache, sessions, locks ---------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL") or None
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "identityhub.cache.HubRedisCache", "LOCATION": REDIS_URL}}
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- rate limits (identityhub/ratelimit.py, django-ratelimit) ------------------------------
_RATE = re.compile(r"[0-9]+/[0-9]*[smhd]")


def env_rate(name: str, default: str) -> str | None:
    """`30/m`, `100/5m`, `1000/h`; `off` (or empty) for no limit."""
    value = os.environ.get(name, default).strip()
    if value.lower() in {"", "off", "0"}:
        return None
    if not _RATE.fullmatch(value):
        raise ImproperlyConfigured(f"{name} must look like 30/m, 100/5m or off, got {value!r}")
    return value


HUB_RATELIMIT_LOGIN = env_rate("HUB_RATELIMIT_LOGIN", "30/m")  # /login* per address
HUB_RATELIMIT_COMPLETE = env_rate("HUB_RATELIMIT_COMPLETE", "30/m")  # /complete* per address
HUB_RATELIMIT_TOKEN_FAILURES = env_rate("HUB_RATELIMIT_TOKEN_FAILURES", "10/m")  # 401s at /token/ per address
HUB_RATELIMIT_TOKEN_CLIENT_FAILURES = env_rate("HUB_RATELIMIT_TOKEN_CLIENT_FAILURES", "30/m")  # … per client_id
HUB_RATELIMIT_PASSKEY = env_rate("HUB_RATELIMIT_PASSKEY", "30/m")  # /login/passkey/* (options, verify) per address
HUB_RATELIMIT_ACCESS_REQUEST = env_rate("HUB_RATELIMIT_ACCESS_REQUEST", "10/h")  # "Ask for access" per address
RATELIMIT_USE_CACHE = "default"
RATELIMIT_FAIL_OPEN = True  # a cache that cannot count must not lock the family out
# django-ratelimit's check knows django-redis, not Django's own RedisCache (ours: atomic INCR, shared),
# hence W001 with REDIS_URL. Without Redis the default is LocMemCache (E003 "not a shared cache"): each
# web process counts on its own, so with N processes up to N times a limit gets through. Accepted for
# the no-Redis profile (`make run`: one process; `entrypoint.sh all`: WEB_WORKERS, default 2) rather
# than the database cache, which is not atomic either (E003 as well) and would add a write transaction
# on SQLite to every /login and /token request. docs/operations.md says so; set REDIS_URL for exact limits.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"] + ([] if REDIS_URL else ["django_ratelimit.E003"])

# --- celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
CELERY_TASK_ALWAYS_EAGER = env_flag("CELERY_TASK_ALWAYS_EAGER")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
# Exactly one beat. Failed syncs are rescheduled through NAS.next_sync_at (backoff), never by Celery
# retries, so nothing here depends on the Redis visibility timeout.
# HUB_SYNC_TICK_SECONDS: how often beat looks for a NAS whose sync is due (tests and bench/ shorten it).
HUB_SYNC_TICK_SECONDS = float(os.environ.get("HUB_SYNC_TICK_SECONDS") or 60)
if HUB_SYNC_TICK_SECONDS <= 0:
    raise ImproperlyConfigured(f"HUB_SYNC_TICK_SECONDS must be more than 0, got {HUB_SYNC_TICK_SECONDS!r}")
CELERY_BEAT_SCHEDULE = {
    "sync-due": {"task": "synology.tasks.sync_due", "schedule": HUB_SYNC_TICK_SECONDS,
                 "options": {"expires": max(HUB_SYNC_TICK_SECONDS - 5, HUB_SYNC_TICK_SECONDS * 0.9)}},
    "housekeeping": {"task": "identityhub.tasks.housekeeping", "schedule": 6 * 3600.0},
}

# --- auth ---------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.auth_backends.UpstreamSessionBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:account"
LOGOUT_REDIRECT_URL = "accounts:logged-out"  # the admin's sign-out too: never straight back to /login/
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    # Client secrets only: fast, safe because every accepted secret has >= 128 bits.
    "identityhub.oidc.hashers.ClientSecretHasher",
]

SOCIAL_AUTH_STRATEGY = "accounts.strategy.HubStrategy"
SOCIAL_AUTH_JSONFIELD_ENABLED = True
SOCIAL_AUTH_URL_NAMESPACE = "accounts"
SOCIAL_AUTH_SANITIZE_REDIRECTS = True
SOCIAL_AUTH_REDIRECT_IS_HTTPS = _secure
SOCIAL_AUTH_LOGIN_ERROR_URL = "/"
SOCIAL_AUTH_RAISE_EXCEPTIONS = False
SOCIAL_AUTH_USER_FIELDS = ["email"]
SOCIAL_AUTH_PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_uid",
    "social_core.pipeline.social_auth.auth_allowed",
    "social_core.pipeline.social_auth.social_user",
    "joining.pipeline.invited_person",  # an invitation names the person, whatever the email
    "accounts.pipeline.link_declared_person",
    "social_core.pipeline.social_auth.associate_user",
    "accounts.pipeline.bind_link_to_issuer",  # a new link records the issuer it was made under
    "joining.pipeline.use_invitation",  # single use: claimed once the link exists, or undone
)

# --- OpenID Connect provider (django-oauth-toolkit) -----------------------------------------
def _active_private_pem() -> str:
    from identityhub.oidc.keys import active_private_pem

    return active_private_pem()


OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_ISS_ENDPOINT": HUB_ISSUER,
    # The signing key lives encrypted in the database (identityhub.oidc.keys); every process
    # loads the same one on first use, after which DOT keeps it as it keeps any setting.
    "OIDC_RSA_PRIVATE_KEY": lazy(_active_private_pem, str)(),
    "OAUTH2_VALIDATOR_CLASS": "identityhub.oidc.validator.HubOAuth2Validator",
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,
    "OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS": True,
    "OIDC_RP_INITIATED_LOGOUT_ACCEPT_EXPIRED_TOKENS": True,
    # DOT would delete every token of the person, on every device, telling no app: the hub's LogoutView
    # revokes that hub session's tokens and sends back-channel logout tokens (identityhub.oidc.backchannel).
    "OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS": False,
    # PKCE: required for public clients, optional for confidential ones — decided per client in
    # HubOAuth2Validator.is_pkce_required (oauthlib only accepts a literal True from the setting).
    "CLIENT_SECRET_HASHER": "hub_client_sha256",
    "ACCESS_TOKEN_GENERATOR": "identityhub.oidc.tokens.random_token",
    "REFRESH_TOKEN_GENERATOR": "identityhub.oidc.tokens.random_token",
    "SCOPES": {
        "openid": _("Sign you in"),
        "profile": _("See your name"),
        "email": _("See your email address"),
        "groups": _("See your households"),
        "offline_access": _("Keep you signed in"),
    },
    "DEFAULT_SCOPES": ["openid"],
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"],
    "REQUEST_APPROVAL_PROMPT": "force",
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(os.environ.get("HUB_ACCESS_TOKEN_SECONDS", "3600")),
    "ID_TOKEN_EXPIRE_SECONDS": int(os.environ.get("HUB_ACCESS_TOKEN_SECONDS", "3600")),
    "REFRESH_TOKEN_EXPIRE_SECONDS": int(os.environ.get("HUB_REFRESH_TOKEN_SECONDS", str(30 * 24 * 3600))),
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,  # RFC 9207 `iss` on authorization responses
    # Access and refresh tokens are kept only as their SHA-256 `token_checksum` (the `token` column
    # is blank; migration oidc.0005 blanked the rows stored before). Needs a zero grace period.
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    # No access token in a query string (DOT's gate covers verify_request; the validator refuses it
    # at userinfo too, which DOT answers through oauthlib without that gate).
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
}
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
# A retired signing key stays in the JWKS this long (tokens it signed keep verifying).
HUB_KEY_RETIREMENT_SECONDS = int(os.environ.get("HUB_KEY_RETIREMENT_SECONDS", str(7 * 24 * 3600)))
# Redeemed codes are kept as long as the refresh tokens they issued can live (code-reuse
# revocation and the original auth_time of refreshed ID tokens).
HUB_REDEEMED_CODE_RETENTION_SECONDS = (
    OAUTH2_PROVIDER["REFRESH_TOKEN_EXPIRE_SECONDS"] + OAUTH2_PROVIDER["ACCESS_TOKEN_EXPIRE_SECONDS"]
)

# --- email to household admins (access requests) -------------------------------------------
def _email_settings(url: str) -> dict:
    """HUB_EMAIL_URL: `smtp://user:pass@host:587?tls=1` (or `ssl=1`), `console://`, or unset (no mail)."""
    from urllib.parse import parse_qs, unquote

    if not url:
        return {"HUB_EMAIL_ENABLED": False}
    parts = urlsplit(url)
    if parts.scheme == "console":
        return {"HUB_EMAIL_ENABLED": True, "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ImproperlyConfigured("HUB_EMAIL_URL must look like smtp://user:password@host:587?tls=1 or console://")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return {
        "HUB_EMAIL_ENABLED": True,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parts.hostname,
        "EMAIL_PORT": parts.port or (465 if parts.scheme == "smtps" else 587),
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": env_flag_value(query.get("tls", "")),
        "EMAIL_USE_SSL": parts.scheme == "smtps" or env_flag_value(query.get("ssl", "")),
        "EMAIL_TIMEOUT": 10,
    }


def env_flag_value(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


globals().update(_email_settings(os.environ.get("HUB_EMAIL_URL", "").strip()))
DEFAULT_FROM_EMAIL = os.environ.get("HUB_EMAIL_FROM") or f"identity-hub@{_issuer.hostname}"

# Retention for housekeeping (identityhub.tasks.housekeeping).
HUB_SYNCRUN_RETENTION_DAYS = int(os.environ.get("HUB_SYNCRUN_RETENTION_DAYS", "30"))
HUB_AUDIT_RETENTION_DAYS = int(os.environ.get("HUB_AUDIT_RETENTION_DAYS", "365"))

# --- i18n, static -------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French")), ("de", _("German"))]
LOCALE_PATHS = [BASE_DIR / "locale"]  # the hub's own catalogues (.po and compiled .mo, both committed)
TIME_ZONE = os.environ.get("TZ", "UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = f"/{HUB_URL_PREFIX}/static/" if HUB_URL_PREFIX else "/static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

# --- metrics (/metrics, identityhub/metrics.py) ---------------------------------------------
# Unset: /metrics is a 404. Set: Prometheus scrapes with `Authorization: Bearer <token>`, and every
# process counts into its own file under HUB_METRICS_DIR (prometheus_client's multiprocess mode; one
# folder per host name, so containers sharing var/ never share files); a scrape sums the folder.
HUB_METRICS_TOKEN = os.environ.get("HUB_METRICS_TOKEN", "").strip() or None
HUB_METRICS_DIR = (os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("HUB_METRICS_DIR")
                   or str(VAR_DIR / "metrics" / platform.node())) if HUB_METRICS_TOKEN else None

# --- logs -----------------------------------------------------------------------------------
# text: `time LEVEL logger message`; json: one object per line (identityhub/logs.py).
HUB_LOG_FORMAT = os.environ.get("HUB_LOG_FORMAT", "text").strip().lower() or "text"
if HUB_LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"HUB_LOG_FORMAT must be text or json, got {os.environ.get('HUB_LOG_FORMAT')!r}")
# Celery workers replace the root logger's handlers with their own text format unless told not to.
CELERY_WORKER_HIJACK_ROOT_LOGGER = HUB_LOG_FORMAT != "json"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "identityhub.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler",
                             "formatter": "json" if HUB_LOG_FORMAT == "json" else "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("HUB_LOG_LEVEL", "INFO")},
    "loggers": {
        # oauthlib logs request bodies (client secrets, codes) at DEBUG: never let it.
        "oauthlib": {"level": "WARNING"},
        "oauth2_provider": {"level": "WARNING"},
    },
}
