"""Extra claims (`hub claims` prints exactly what the client gets), schema, secrets never printed."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.models import User
from identityhub.config.claims import evaluate_extra_claims
from identityhub.config.startup import apply_on_start
from identityhub.oidc.policy import AccessDecision
from synology.models import NAS, DSMAccount

from .conftest import ALL_SECRETS, CONFIG, DSM_SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture
def applied(config_file, run_hub):
    assert run_hub("apply", config_file).code == 0
    mum = User.objects.get(email="mum@example.com")
    DSMAccount.objects.create(nas=NAS.objects.get(pk="ds923"), name="maman", user=mum, linked_by="explicit")
    return config_file


def test_hub_claims_prints_the_extra_claims(applied, run_hub):
    result = run_hub("claims", "mum@example.com", "ds923-dsm")
    assert result.code == 0, result.err
    claims = json.loads(result.out)
    assert claims["username"] == claims["preferred_username"] == "maman"
    assert claims["nas_user"] == "maman"
    assert claims["tier"] == 3
    assert claims["roles"] == {"friends": "member", "valais": "member"}
    assert claims["email"] == "mum@example.com"

    only_openid = json.loads(run_hub("claims", "mum@example.com", "ds923-dsm", "--scope", "openid").out)
    assert "roles" not in only_openid  # gated by scope groups
    assert only_openid["tier"] == 3 and only_openid["nas_user"] == "maman"


def test_vocabulary():
    user = User(email="mael@example.com", name="Maël")
    decision = AccessDecision(dsm_username=None, household_roles={"valais": "admin", "friends": "member"})
    rules = {
        "mail": {"value": "person.email"},
        "display": {"value": "person.name", "scope": "profile"},
        "id": {"value": "person.id"},
        "account": {"value": "nas.username"},  # no NAS account: left out
        "homes": {"value": "households"},
        "roles": {"value": "household_roles"},
        "admin_of": {"value": "admin_of"},
        "flags": {"const": ["a", 1, True]},
        "sub": {"const": "hijack"},  # reserved: never overrides
        "weird": {"value": "__import__('os')"},  # not in the vocabulary: ignored
    }
    claims = evaluate_extra_claims(rules, user=user, decision=decision, scopes={"openid"})
    assert claims == {
        "mail": "mael@example.com",
        "id": str(user.public_id),
        "homes": ["friends", "valais"],
        "roles": {"friends": "member", "valais": "admin"},
        "admin_of": ["valais"],
        "flags": ["a", 1, True],
    }
    with_profile = evaluate_extra_claims(rules, user=user, decision=decision, scopes={"openid", "profile"})
    assert with_profile["display"] == "Maël"


def test_const_types_follow_yaml_core_and_quotes_keep_strings(write, secrets_env):
    from identityhub.config.load import load_config

    text = CONFIG.replace("      tier: {const: 3}", '      tier: {const: 3}\n      b: {const: true}\n'
                          '      s: {const: "true"}\n      z: {const: 0123}\n      f: {const: 1.5}\n'
                          '      l: {const: [no, 2, "3"]}')
    claims = load_config(write(text)).config.clients[0].claims
    consts = [claims[k].const for k in ("tier", "b", "s", "z", "f", "l")]
    assert consts == [3, True, "true", "0123", 1.5, ["no", 2, "3"]]


def test_schema_is_json_schema(run_hub):
    result = run_hub("schema")
    schema = json.loads(result.out)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"version", "issuer", "upstreams", "households", "operators", "nas",
                                         "clients"}
    assert schema["properties"]["operators"]["type"] == "array"
    assert schema["properties"]["operators"]["items"] == {"type": "string"}
    assert "operators" not in schema.get("required", [])
    assert "client_secret_file" in schema["$defs"]["ClientSpec"]["properties"]


def test_secrets_never_appear_in_any_output(applied, write, run_hub, monkeypatch):
    outputs = [run_hub("check", applied), run_hub("plan", applied), run_hub("apply", applied), run_hub("export"),
               run_hub("claims", "mum@example.com", "ds923-dsm")]
    monkeypatch.setenv("SYNO_PASSWORD", "n3w-Syn0-password")
    monkeypatch.setenv("DSM_CLIENT_SECRET", "Qm4Xz7Lp2Nw9Kt5Rv8Bc3Hj6Fd1Gs0Ya")
    outputs += [run_hub("plan", applied), run_hub("apply", applied)]
    monkeypatch.setenv("DSM_CLIENT_SECRET", DSM_SECRET[:20])  # too short: an error mentioning the secret's key
    outputs += [run_hub("check", applied), run_hub("apply", applied)]
    text = "\n".join(r.output for r in outputs)
    assert "secret changed" in text and "at least 32 characters" in text
    for secret in (*ALL_SECRETS, "n3w-Syn0-password", "Qm4Xz7Lp2Nw9Kt5Rv8Bc3Hj6Fd1Gs0Ya", DSM_SECRET[:20]):
        assert secret not in text


def test_startup_apply(config_file, settings, monkeypatch, caplog):
    settings.HUB_CONFIG = config_file
    monkeypatch.delenv("HUB_APPLY_ON_START", raising=False)
    assert apply_on_start() is False
    assert not User.objects.exists()
    monkeypatch.setenv("HUB_APPLY_ON_START", "1")
    assert apply_on_start() is True
    assert User.objects.filter(email="mum@example.com").exists()
    caplog.clear()
    with caplog.at_level("INFO", logger="identityhub.config"):
        assert apply_on_start() is True
    assert "config: No changes." in caplog.text


def test_startup_apply_refuses_a_broken_file(write, secrets_env, settings, monkeypatch):
    settings.HUB_CONFIG = write(CONFIG.replace("sync_interval: 1h", "sync_interval: often"))
    monkeypatch.setenv("HUB_APPLY_ON_START", "1")
    with pytest.raises(ImproperlyConfigured, match="invalid duration"):
        apply_on_start()
    assert not User.objects.exists()
