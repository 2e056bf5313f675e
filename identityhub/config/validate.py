"""Checks beyond the schema: references, duplicates, operators, URLs, secrets, claims, the issuer."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.models import normalize_email
from identityhub.oidc.hashers import check_secret_strength
from identityhub.oidc.services import check_backchannel_logout_uri, check_redirect_uri, is_loopback

from .errors import Problem
from .load import LoadedConfig

# Claims the protocol or the hub itself sets: a client's extra claims may not override them.
RESERVED_CLAIMS = frozenset(
    {
        "sub", "iss", "aud", "exp", "iat", "nbf", "jti", "nonce", "auth_time", "acr", "amr", "azp",
        "at_hash", "c_hash", "s_hash", "sid", "cnf", "scope", "client_id",
        "username", "preferred_username", "email", "email_verified", "name", "groups",
    }
)
MIN_SYNC_INTERVAL_SECONDS = 60


def redirect_uri_problem(uri: str) -> str | None:
    """check_redirect_uri, also for strings urlsplit cannot take (`https://[::1`)."""
    try:
        return check_redirect_uri(uri)
    except ValueError:
        return f"redirect URI {uri!r} is not a valid URL"


def url_problem(url: str, what: str) -> str | None:
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 (parses the host: raises for a malformed IPv6 literal)
    except ValueError:
        return f"{what} {url!r} is not a valid URL"
    if "@" in parts.netloc:  # not quoted: it may hold a password, which every sync message would repeat
        return f"{what} must not carry a user name or password (user@host)"
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return f"{what} {url!r} must be an absolute https URL"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return f"{what} {url!r} must use https (http is allowed on loopback only)"
    return None


def ca_path(loaded: LoadedConfig, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else (loaded.document.base_dir / path).resolve()


def _is_file(loaded: LoadedConfig, value: str) -> bool:
    """A readable-looking regular file; False also where stat fails (too long, no permission, NUL)."""
    try:
        return ca_path(loaded, value).is_file()
    except (OSError, ValueError):
        return False


def check_semantics(loaded: LoadedConfig) -> list[Problem]:
    config = loaded.config
    problems: list[Problem] = []

    def add(path: tuple, message: str, *, at_key: bool = False) -> None:
        problems.append(loaded.problem(path, message, at_key=at_key))

    # issuer
    problem = url_problem(config.issuer, "issuer")
    if problem:
        add(("issuer",), problem)
    elif settings.HUB_ISSUER_FROM_ENV and config.issuer.rstrip("/") != settings.HUB_ISSUER.rstrip("/"):
        add(("issuer",), f"issuer {config.issuer!r} differs from HUB_ISSUER {settings.HUB_ISSUER!r}")

    def unique(kind: str, section: str, key: str, values: list[str]) -> None:
        first: dict[str, int] = {}
        for index, value in enumerate(values):
            if value in first:
                line = loaded.problem((section, first[value], key), "").line
                add((section, index, key), f"duplicate {kind} id {value!r} (first at line {line})")
            else:
                first[value] = index

    # upstreams
    unique("upstream", "upstreams", "id", [u.id for u in config.upstreams])
    for i, upstream in enumerate(config.upstreams):
        at = ("upstreams", i)
        if upstream.type == "mock" and not settings.DEBUG:
            add((*at, "type"), f"upstream {upstream.id}: type mock is only allowed with HUB_DEBUG=1")
        if upstream.type == "oidc" and not upstream.issuer:
            add(at, f"upstream {upstream.id}: missing key 'issuer' (type oidc needs one)")
        if upstream.issuer:
            problem = url_problem(upstream.issuer, "issuer")
            if problem:
                add((*at, "issuer"), f"upstream {upstream.id}: {problem}")
        if upstream.type in {"google", "oidc"} and not upstream.client_id:
            add(at, f"upstream {upstream.id}: missing key 'client_id'")
        if upstream.type == "google" and not upstream.client_secret:
            add(at, f"upstream {upstream.id}: missing key 'client_secret' (Google needs one)")
        for j, domain in enumerate(upstream.allowed_domains):
            if not domain or "@" in domain or " " in domain or "." not in domain:
                add((*at, "allowed_domains", j), f"{domain!r} is not an email domain (e.g. example.org)")

    # households and people
    unique("household", "households", "id", [h.id for h in config.households])
    household_ids = {h.id for h in config.households}
    names: dict[str, tuple[str, tuple]] = {}  # email -> (declared name, path) across households
    for i, household in enumerate(config.households):
        seen: dict[str, int] = {}
        for j, member in enumerate(household.members):
            at = ("households", i, "members", j)
            try:
                validate_email(member.email)
            except ValidationError:
                add((*at, "email"), f"{member.email!r} is not an email address")
                continue
            email = normalize_email(member.email)
            if email in seen:
                line = loaded.problem(("households", i, "members", seen[email], "email"), "").line
                add((*at, "email"), f"{email} is listed twice in household {household.id} (first at line {line})")
                continue
            seen[email] = j
            if member.name:
                previous = names.get(email)
                if previous and previous[0] != member.name:
                    line = loaded.problem(previous[1], "").line
                    add((*at, "name"), f"{email} is declared with another name at line {line} ({previous[0]!r})")
                elif not previous:
                    names[email] = (member.name, (*at, "name"))

    # operators: declared members, each once (emails compare as member emails do: normalize_email)
    members = {normalize_email(m.email) for h in config.households for m in h.members}
    first_operator: dict[str, int] = {}
    for j, operator in enumerate(config.operators):
        at = ("operators", j)
        try:
            validate_email(operator)
        except ValidationError:
            add(at, f"{operator!r} is not an email address")
            continue
        email = normalize_email(operator)
        if email in first_operator:
            line = loaded.problem(("operators", first_operator[email]), "").line
            add(at, f"{email} is listed twice in operators (first at line {line})")
            continue
        first_operator[email] = j
        if email not in members:
            add(at, f"operator {email} is not a member of any household (declare them in households first)")

    # NASes
    unique("NAS", "nas", "id", [n.id for n in config.nas])
    nas_by_id = {n.id: n for n in config.nas}
    for i, nas in enumerate(config.nas):
        at = ("nas", i)
        if nas.household not in household_ids:
            add((*at, "household"), f"nas {nas.id}: unknown household {nas.household!r}")
        problem = url_problem(nas.url, "url")
        if problem:
            add((*at, "url"), f"nas {nas.id}: {problem}")
        tls = nas.verify_tls
        if isinstance(tls, str) and not _is_file(loaded, tls):
            add((*at, "verify_tls"), f"nas {nas.id}: CA bundle {nas.verify_tls} not found")
        if nas.service_account is not None and not nas.service_account.password:
            add((*at, "service_account"), f"nas {nas.id}: missing key 'password' in service_account")
        if nas.sync_interval.total_seconds() < MIN_SYNC_INTERVAL_SECONDS:
            add((*at, "sync_interval"), f"nas {nas.id}: sync_interval must be at least 1m")
        for j, group in enumerate(nas.new_account_groups):
            if not group.strip():
                add((*at, "new_account_groups", j),
                    f"nas {nas.id}: new_account_groups: a DSM group name cannot be empty")
        seen_accounts: set[str] = set()
        for email, account in nas.accounts.items():
            path = (*at, "accounts", email)
            try:
                validate_email(email)
            except ValidationError:
                add(path, f"{email!r} is not an email address", at_key=True)
                continue
            if normalize_email(email) in seen_accounts:
                add(path, f"{email} is mapped twice on nas {nas.id}", at_key=True)
            seen_accounts.add(normalize_email(email))
            if not account.strip():
                add(path, f"nas {nas.id}: empty account name for {email}")

    # clients
    unique("client", "clients", "client_id", [c.client_id for c in config.clients])
    scopes = set(settings.OAUTH2_PROVIDER.get("SCOPES", {}))
    for i, client in enumerate(config.clients):
        at = ("clients", i)
        cid = client.client_id
        if not cid or len(cid) > 100 or any(c.isspace() for c in cid):
            add((*at, "client_id"), f"client id {cid!r} must be 1 to 100 characters without spaces")
        if client.nas is not None and client.nas not in nas_by_id:
            add((*at, "nas"), f"client {cid}: unknown nas {client.nas!r}")
        if client.households is None:
            if client.nas is None:
                add(at, f"client {cid}: missing key 'households' (required without nas)")
        else:
            if not client.households and client.nas is None:
                add((*at, "households"), f"client {cid}: households may not be empty without nas")
            for j, household in enumerate(client.households):
                if household not in household_ids:
                    add((*at, "households", j), f"client {cid}: unknown household {household!r}")
        if not client.redirect_uris:
            add((*at, "redirect_uris"), f"client {cid}: at least one redirect URI is required")
        for key in ("redirect_uris", "post_logout_redirect_uris"):
            for j, uri in enumerate(getattr(client, key)):
                problem = redirect_uri_problem(uri)
                if problem:
                    add((*at, key, j), f"client {cid}: {problem}")
        if client.backchannel_logout_uri:
            try:
                problem = check_backchannel_logout_uri(client.backchannel_logout_uri)
            except ValueError:
                problem = f"back-channel logout URI {client.backchannel_logout_uri!r} is not a valid URL"
            if problem:
                add((*at, "backchannel_logout_uri"), f"client {cid}: {problem}")
        if client.client_secret is not None:
            problem = check_secret_strength(client.client_secret)  # also refuses hash-looking values
            if problem:
                add((*at, "client_secret"), f"client {cid}: {problem}")
        for name, rule in client.claims.items():
            path = (*at, "claims", name)
            if name in RESERVED_CLAIMS:
                add(path, f"client {cid}: claim {name!r} is reserved and cannot be overridden", at_key=True)
            elif not name or len(name) > 100 or any(c.isspace() for c in name):
                add(path, f"client {cid}: claim name {name!r} must be 1 to 100 characters without spaces",
                    at_key=True)
            if (rule.value is None) == ("const" not in rule.model_fields_set):
                add(path, f"client {cid}: claim {name!r} needs exactly one of 'value' or 'const'")
            elif "const" in rule.model_fields_set and not _json_like(rule.const):
                add((*path, "const"), f"client {cid}: claim {name!r}: const must be a string, number, bool or list")
            if rule.scope is not None and rule.scope not in scopes:
                add((*path, "scope"), f"client {cid}: unknown scope {rule.scope!r} ({', '.join(sorted(scopes))})")
            if rule.value == "nas.username" and client.nas is None:
                add((*path, "value"), f"client {cid}: claim {name!r} uses nas.username but the client has no nas")
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def _json_like(value) -> bool:
    if value is None:
        return False
    if isinstance(value, list):
        return all(v is not None and not isinstance(v, list | dict) and _json_like(v) for v in value)
    return isinstance(value, str | int | float | bool)
