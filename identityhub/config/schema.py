"""The config file, version 1, as pydantic models (shape and types; cross-references live in validate.py).

The loader hands these models plain data in which every scalar is a string (or None for an empty
value), so booleans, the version number and durations are parsed here, strictly: `true`/`false`
only, never YAML 1.1's `yes`/`no`/`on`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

SLUG_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DURATION_RE = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
DURATION_PATTERN = r"^(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"

# Rules for per-client extra claims (evaluated by identityhub.config.claims).
CLAIM_VALUES = (
    "person.email",
    "person.name",
    "person.id",
    "nas.username",
    "households",
    "household_roles",
    "admin_of",
)


def _parse_bool(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _parse_version(value: Any) -> Any:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def parse_duration(value: Any) -> Any:
    """`90s`, `15m`, `1h`, `1d`, `1w` and combinations such as `1h30m`."""
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a duration such as 15m, 1h or 1d")
    match = DURATION_RE.match(value.strip())
    if not value.strip() or not match:
        raise ValueError(f"invalid duration {value!r}: use a number and a unit (s, m, h, d, w), e.g. 15m, 1h, 1d")
    weeks, days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _parse_tls(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        lowered = value.strip().lower()
        if lowered in {"true", "false"}:
            return lowered == "true"
        return value
    raise ValueError("expected true, false or the path of a CA bundle")


def _none_to_list(value: Any) -> Any:
    return [] if value is None else value


def _none_to_dict(value: Any) -> Any:
    return {} if value is None else value


def _check_slug(value: str) -> str:
    if not SLUG_RE.match(value):
        raise ValueError(f"{value!r} is not a valid id: use letters, digits, - and _ (at most 64 characters)")
    return value


Bool = Annotated[bool, BeforeValidator(_parse_bool), WithJsonSchema({"type": "boolean"})]
Slug = Annotated[str, AfterValidator(_check_slug), WithJsonSchema({"type": "string", "pattern": SLUG_RE.pattern})]
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["15m", "1h", "1d"]}),
]
TLS = Annotated[
    bool | str,
    BeforeValidator(_parse_tls),
    WithJsonSchema({"anyOf": [{"type": "boolean"}, {"type": "string", "description": "path of a CA bundle"}]}),
]
StrList = Annotated[list[str], BeforeValidator(_none_to_list)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class UpstreamSpec(Strict):
    """An identity provider people sign in with."""

    id: Slug = Field(description="slug used in URLs (/login/<id>/)")
    type: Literal["google", "oidc", "mock"] = Field(description="mock: only with HUB_DEBUG=1")
    name: str = Field("", description="button label")
    issuer: str | None = Field(None, description="required for type oidc; discovered from <issuer>/.well-known")
    client_id: str = ""
    client_secret: str | None = None
    client_secret_file: str | None = Field(None, description="file holding client_secret")
    allowed_domains: StrList = Field(default_factory=list, description="first links only from these email domains")


class MemberSpec(Strict):
    email: str
    name: str = ""
    role: Literal["member", "admin"] = "member"


class HouseholdSpec(Strict):
    id: Slug
    name: str | None = Field(None, description="default: the id")
    members: Annotated[list[MemberSpec], BeforeValidator(_none_to_list)] = Field(default_factory=list)


class ServiceAccountSpec(Strict):
    username: str
    password: str | None = None
    password_file: str | None = Field(None, description="file holding the password")


class NASSpec(Strict):
    id: Slug
    name: str = ""
    household: str
    url: str = Field(description="https://192.168.1.20:5001")
    verify_tls: TLS = Field(True, description="true (default) | false | path to a CA bundle")
    service_account: ServiceAccountSpec | None = None
    sync_interval: Duration = Field(timedelta(hours=1), description="e.g. 15m, 1h, 1d")
    enabled: Bool = True
    new_account_groups: list[str] = Field(
        default_factory=list, description="DSM groups the accounts the hub creates on this NAS join"
    )
    accounts: Annotated[dict[str, str], BeforeValidator(_none_to_dict)] = Field(
        default_factory=dict, description="email -> DSM account name; wins over email matching"
    )


class ClaimRuleSpec(Strict):
    """One extra claim: exactly one of `value` (from the vocabulary) or `const`; `scope` gates release."""

    value: Literal[CLAIM_VALUES] | None = None  # type: ignore[valid-type]
    const: Annotated[Any, WithJsonSchema({})] = None
    scope: str | None = Field(None, description="released only when the client asked for this scope")


class ClientSpec(Strict):
    client_id: str
    name: str = ""
    client_secret: str | None = Field(None, description="omit for a public client (PKCE required)")
    client_secret_file: str | None = Field(None, description="file holding client_secret")
    redirect_uris: list[str]
    post_logout_redirect_uris: StrList = Field(default_factory=list)
    backchannel_logout_uri: str = Field(
        "", description="OpenID Connect Back-Channel Logout: the hub POSTs logout tokens here (https, or http on "
        "loopback only)",
    )
    nas: str | None = Field(None, description="username claim = the person's account on this NAS")
    households: list[str] | None = Field(None, description="default: the bound NAS's household")
    skip_consent: Bool = False
    claims: Annotated[dict[str, ClaimRuleSpec], BeforeValidator(_none_to_dict)] = Field(default_factory=dict)


class HubConfig(Strict):
    """Identity Hub configuration, version 1."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, title="Identity Hub configuration")

    version: Annotated[Literal[1], BeforeValidator(_parse_version), WithJsonSchema({"const": 1})]
    issuer: str = Field(description="public URL of the hub; must equal HUB_ISSUER when that is set")
    upstreams: Annotated[list[UpstreamSpec], BeforeValidator(_none_to_list)] = Field(default_factory=list)
    households: Annotated[list[HouseholdSpec], BeforeValidator(_none_to_list)] = Field(default_factory=list)
    operators: StrList = Field(
        default_factory=list,
        description="emails of declared members who run the whole hub (Django superusers); "
        "household admins are not operators unless listed here",
    )
    nas: Annotated[list[NASSpec], BeforeValidator(_none_to_list)] = Field(default_factory=list)
    clients: Annotated[list[ClientSpec], BeforeValidator(_none_to_list)] = Field(default_factory=list)


def json_schema() -> dict:
    schema = HubConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
