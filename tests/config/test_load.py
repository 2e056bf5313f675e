"""`hub check`: one precise `FILE:LINE:COL: message` line per problem; strings stay strings."""

from __future__ import annotations

import pytest

from identityhub.config.errors import ConfigError
from identityhub.config.load import interpolate, load_config

from .conftest import CONFIG, DSM_SECRET, SYNO_PASSWORD

MINIMAL = """\
version: 1
issuer: http://127.0.0.1:8000
households:
  - id: home
    name: Home
    members:
      - {email: a@example.com}
"""


def problems(path: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def only_problem(path: str) -> str:
    found = problems(path)
    assert len(found) == 1, found
    return found[0]


def test_the_contract_example_loads(config_file):
    loaded = load_config(config_file)
    assert [c.client_id for c in loaded.config.clients] == ["ds923-dsm", "photos", "cli"]
    nas = loaded.config.nas[0]
    assert nas.service_account.password == SYNO_PASSWORD  # `:` and `#` survive: interpolation is on parsed values
    assert nas.verify_tls is False
    assert loaded.config.clients[0].claims["tier"].const == 3


def test_unknown_key_names_the_key_and_suggests(write, secrets_env):
    path = write(CONFIG.replace("    name: DSM on DS923+", "    nmae: DSM on DS923+"))
    assert only_problem(path) == f"{path}:31:5: unknown key 'nmae'; did you mean 'name'?"


def test_unknown_top_level_key(write):
    path = write(MINIMAL + "houshold: []\n")
    assert only_problem(path) == f"{path}:8:1: unknown key 'houshold'; did you mean 'households'?"


def test_missing_key_points_at_the_parent(write):
    path = write(MINIMAL.replace("    name: Home\n", "").replace("  - id: home\n", "  - name: Home\n"))
    assert only_problem(path) == f"{path}:4:5: missing key 'id'"


def test_missing_top_level_key(write):
    path = write(MINIMAL.replace("version: 1\n", ""))
    assert only_problem(path) == f"{path}:1:1: missing key 'version'"


def test_wrong_type(write):
    path = write(MINIMAL.replace("    name: Home", "    name: [Home]"))
    assert only_problem(path) == f"{path}:5:11: expected a string, got a list"


def test_wrong_bool(write, secrets_env):
    path = write(CONFIG.replace("skip_consent: true", "skip_consent: yes"))
    assert only_problem(path) == f"{path}:35:19: expected true or false, got 'yes'"


def test_bad_version(write):
    path = write(MINIMAL.replace("version: 1", "version: 2"))
    assert only_problem(path) == f"{path}:1:10: expected one of 1, got int"


@pytest.mark.parametrize("duration", ["1 hour", "90", "h", "1h30", "-5m"])
def test_bad_duration(write, secrets_env, duration):
    path = write(CONFIG.replace("sync_interval: 1h", f"sync_interval: {duration}"))
    message = only_problem(path)
    assert message.startswith(f"{path}:27:20: invalid duration "), message
    assert "15m" in message


def test_good_durations(write, secrets_env):
    from datetime import timedelta

    path = write(CONFIG.replace("sync_interval: 1h", "sync_interval: 1d2h30m"))
    assert load_config(path).config.nas[0].sync_interval == timedelta(days=1, hours=2, minutes=30)


def test_too_short_sync_interval(write, secrets_env):
    path = write(CONFIG.replace("sync_interval: 1h", "sync_interval: 10s"))
    assert only_problem(path) == f"{path}:27:20: nas ds923: sync_interval must be at least 1m"


def test_duplicate_key(write):
    path = write(MINIMAL.replace("    name: Home\n", "    name: Home\n    name: Again\n"))
    assert only_problem(path) == f"{path}:6:5: duplicate key 'name' (first at line 5)"


def test_alias_and_anchor_are_refused(write):
    text = MINIMAL.replace("    name: Home", "    name: &n Home\n") + "clients: *n\n"
    assert only_problem(write(text)) .endswith(":5:11: YAML anchors (&name) are not allowed")
    text = MINIMAL + "clients: *n\n"
    assert only_problem(write(text)).endswith(":8:10: YAML aliases (*name) are not allowed")


def test_billion_laughs_is_refused_at_the_first_anchor(write):
    text = 'version: 1\na: &a ["lol","lol"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n'
    assert "anchors" in only_problem(write(text))


def test_tags_are_refused(write):
    path = write(MINIMAL.replace("    name: Home", "    name: !!python/name:os.system Home"))
    assert "YAML tags" in only_problem(path)


def test_unset_variable_names_it_and_its_position(write, monkeypatch):
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    path = write(MINIMAL.replace("    name: Home", "    name: Home of ${NOPE_SECRET}"))
    assert only_problem(path) == f"{path}:5:11: environment variable NOPE_SECRET is not set"


def test_a_misplaced_secret_is_never_quoted(write, secrets_env):
    """A secret variable under the wrong key: the problem names the variable, not its value."""
    path = write(CONFIG.replace("service_account: {username: hub-sync, password: ${SYNO_PASSWORD}}",
                                "service_account: ${SYNO_PASSWORD}")
                       .replace("skip_consent: true", "skip_consent: ${DSM_CLIENT_SECRET}"))
    found = problems(path)
    assert found == [
        f"{path}:26:22: expected a mapping, got '${{SYNO_PASSWORD}}'",
        f"{path}:35:19: expected true or false, got '${{DSM_CLIENT_SECRET}}'",
    ]
    assert not any(SYNO_PASSWORD in line or DSM_SECRET in line for line in found)


def test_interpolation_forms(monkeypatch):
    env = {"A": "x", "EMPTY": ""}
    assert interpolate("pre-${A}-post", env) == ("pre-x-post", [])
    assert interpolate("${B:-fallback}", env) == ("fallback", [])
    assert interpolate("${EMPTY:-fallback}", env) == ("fallback", [])
    assert interpolate("${A:-fallback}", env) == ("x", [])
    assert interpolate("cost: $$5 and $${A}", env) == ("cost: $5 and ${A}", [])
    assert interpolate("lone $ sign", env) == ("lone $ sign", [])
    assert interpolate("${B}", env)[1] == ["environment variable B is not set"]
    assert "invalid variable reference" in interpolate("${1A}", env)[1][0]
    assert "unterminated" in interpolate("${A", env)[1][0]


def test_interpolation_inside_flow_mappings_and_quotes(write, monkeypatch):
    monkeypatch.setenv("HOME_NAME", "Chez {nous}, \"ok\"")
    path = write(MINIMAL.replace("    name: Home", "    name: ${HOME_NAME}").replace(
        "{email: a@example.com}", "{email: a@example.com, name: \"${HOME_NAME}\"}"))
    loaded = load_config(path)
    assert loaded.config.households[0].name == 'Chez {nous}, "ok"'
    assert loaded.config.households[0].members[0].name == 'Chez {nous}, "ok"'


def test_yaml_11_scalars_stay_strings(write):
    text = MINIMAL.replace("    name: Home", "    name: no") + """\
nas:
  - id: "0123"
    household: home
    url: https://nas.local:5001
    accounts: {a@example.com: no, b@example.com: 1:30, c@example.com: 0123, d@example.com: off}
"""
    loaded = load_config(write(text))
    assert loaded.config.households[0].name == "no"
    nas = loaded.config.nas[0]
    assert nas.id == "0123"
    assert nas.accounts == {"a@example.com": "no", "b@example.com": "1:30", "c@example.com": "0123",
                            "d@example.com": "off"}


def test_unquoted_numeric_ids_stay_strings(write):
    text = MINIMAL.replace("  - id: home", "  - id: 0123").replace("    name: Home", "    name: 1:30")
    loaded = load_config(write(text))
    assert (loaded.config.households[0].id, loaded.config.households[0].name) == ("0123", "1:30")


def test_secret_files_resolve_against_the_config_folder(write, secrets_env, monkeypatch):
    write(DSM_SECRET + "\n", "secrets/dsm")
    write(SYNO_PASSWORD + "\n", "secrets/syno")
    text = CONFIG.replace("client_secret: ${DSM_CLIENT_SECRET}", "client_secret_file: secrets/dsm").replace(
        "password: ${SYNO_PASSWORD}", "password_file: ${SECRETS_DIR:-secrets}/syno")
    loaded = load_config(write(text, "conf/../hub.yaml"))
    assert loaded.config.clients[0].client_secret == DSM_SECRET
    assert loaded.config.nas[0].service_account.password == SYNO_PASSWORD


def test_missing_secret_file(write, secrets_env):
    path = write(CONFIG.replace("client_secret: ${DSM_CLIENT_SECRET}", "client_secret_file: /nonexistent/dsm"))
    expected = f"{path}:32:25: cannot read client_secret_file /nonexistent/dsm: No such file or directory"
    assert only_problem(path) == expected


def test_an_endless_secret_file_is_refused_not_read_whole(write, secrets_env):
    path = write(CONFIG.replace("client_secret: ${DSM_CLIENT_SECRET}", "client_secret_file: /dev/zero"))
    assert only_problem(path) == f"{path}:32:25: client_secret_file /dev/zero is larger than a secret can be"


def test_secret_and_secret_file_together(write, secrets_env):
    path = write(CONFIG.replace("client_secret: ${DSM_CLIENT_SECRET}",
                                "client_secret: ${DSM_CLIENT_SECRET}\n    client_secret_file: x"))
    assert only_problem(path) == f"{path}:33:5: give either client_secret or client_secret_file, not both"


def test_weak_secret_from_a_file_points_at_the_file_key(write, secrets_env):
    write("short\n", "weak")
    path = write(CONFIG.replace("client_secret: ${DSM_CLIENT_SECRET}", "client_secret_file: weak"))
    message = only_problem(path)
    assert message.startswith(f"{path}:32:25: client ds923-dsm: a client secret needs at least 32 characters")


@pytest.mark.parametrize("secret", ["a" * 40, "password" * 5, "abcabcabcabcabcabcabcabcabcabcab"])
def test_weak_secret(write, secrets_env, monkeypatch, secret):
    monkeypatch.setenv("DSM_CLIENT_SECRET", secret)
    message = only_problem(write(CONFIG))
    assert ":32:20: client ds923-dsm: a client secret needs at least" in message
    assert secret not in message


def test_secret_that_looks_like_a_hash_is_refused(write, secrets_env, monkeypatch):
    monkeypatch.setenv("DSM_CLIENT_SECRET", "hub_client_sha256$Xk2m9Qp4Lw7z$" + DSM_SECRET)
    assert "must not look like a password hash" in only_problem(write(CONFIG))


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://ds923.example.com:5001", "must use https"),
        ("ds923.example.com", "must be an absolute https URL"),
        ("https://ds923.example.com/#frag", "must not carry a fragment"),
        ("https://*.example.com/", "must not contain wildcards"),
    ],
)
def test_bad_redirect_uri(write, secrets_env, uri, reason):
    path = write(CONFIG.replace("[https://ds923.example.com:5001]", f"[{uri}]"))
    message = only_problem(path)
    assert message.startswith(f"{path}:33:21: client ds923-dsm: redirect URI "), message
    assert reason in message


def test_loopback_http_redirect_is_fine(write, secrets_env):
    load_config(write(CONFIG.replace("[https://ds923.example.com:5001]", "[http://localhost:8080/cb]")))


def test_unknown_references(write, secrets_env):
    text = (CONFIG.replace("    household: valais", "    household: valis")
            .replace("    nas: ds923", "    nas: ds924")
            .replace("households: [valais, friends]", "households: [valais, frends]"))
    path = write(text)
    assert problems(path) == [
        f"{path}:23:16: nas ds923: unknown household 'valis'",
        f"{path}:34:10: client ds923-dsm: unknown nas 'ds924'",
        f"{path}:44:26: client photos: unknown household 'frends'",
    ]


def test_duplicate_ids(write, secrets_env):
    text = CONFIG.replace("  - id: friends", "  - id: valais").replace("households: [valais, friends]",
                                                                     "households: [valais]")
    text = text.replace("households: [friends]", "households: [valais]")
    text = text.replace("  - client_id: photos", "  - client_id: ds923-dsm")
    path = write(text)
    assert problems(path) == [
        f"{path}:15:9: duplicate household id 'valais' (first at line 10)",
        f"{path}:40:16: duplicate client id 'ds923-dsm' (first at line 30)",
    ]


def test_duplicate_member_but_a_person_may_be_in_two_households(write, secrets_env):
    load_config(write(CONFIG))  # mum is in valais and in friends
    path = write(CONFIG.replace("- {email: pal@example.com, name: Pal}", "- {email: MUM@example.com}"))
    expected = f"{path}:19:17: mum@example.com is listed twice in household friends (first at line 18)"
    assert only_problem(path) == expected


def test_a_person_has_one_name(write, secrets_env):
    path = write(CONFIG.replace("- {email: mum@example.com}", "- {email: mum@example.com, name: Mother}"))
    assert only_problem(path) == f"{path}:18:40: mum@example.com is declared with another name at line 14 ('Mum')"


def test_client_without_nas_needs_households(write, secrets_env):
    path = write(CONFIG.replace("    households: [friends]\n", ""))
    assert only_problem(path) == f"{path}:45:5: client cli: missing key 'households' (required without nas)"


def test_client_households_default_to_the_nas_household(config_file):
    assert load_config(config_file).config.clients[0].households is None


def test_issuer_must_match_hub_issuer(write, secrets_env, settings):
    settings.HUB_ISSUER_FROM_ENV = True
    path = write(CONFIG.replace("issuer: http://127.0.0.1:8000", "issuer: https://id.example.com"))
    assert only_problem(path) == (
        f"{path}:2:9: issuer 'https://id.example.com' differs from HUB_ISSUER 'http://127.0.0.1:8000'"
    )
    settings.HUB_ISSUER_FROM_ENV = False
    load_config(path)


def test_mock_upstream_only_in_debug(write, secrets_env, settings):
    path = write(CONFIG.replace("    type: google", "    type: mock"))
    assert only_problem(path) == f"{path}:5:11: upstream google: type mock is only allowed with HUB_DEBUG=1"
    settings.DEBUG = True
    load_config(path)


def test_oidc_upstream_needs_an_issuer_google_does_not(write, secrets_env):
    path = write(CONFIG.replace("    type: google", "    type: oidc"))
    assert only_problem(path) == f"{path}:4:5: upstream google: missing key 'issuer' (type oidc needs one)"
    load_config(write(CONFIG.replace("    type: google", "    type: oidc\n    issuer: https://login.example.org")))


def test_reserved_claims_are_refused(write, secrets_env):
    path = write(CONFIG.replace("      tier: {const: 3}", "      preferred_username: {value: person.email}"))
    assert only_problem(path) == (
        f"{path}:39:7: client ds923-dsm: claim 'preferred_username' is reserved and cannot be overridden"
    )


def test_claim_rule_shape(write, secrets_env):
    path = write(CONFIG.replace("tier: {const: 3}", "tier: {value: person.shoe_size}"))
    assert "expected one of 'person.email'" in only_problem(path)
    path = write(CONFIG.replace("tier: {const: 3}", "tier: {scope: email}"))
    assert only_problem(path) == f"{path}:39:13: client ds923-dsm: claim 'tier' needs exactly one of 'value' or 'const'"
    path = write(CONFIG.replace("tier: {const: 3}", "tier: {const: 3, scope: wallet}"))
    assert "unknown scope 'wallet'" in only_problem(path)


def test_every_problem_is_reported_in_file_order(write, secrets_env):
    text = CONFIG.replace("    name: Valais family", "    name: Valais family\n    colour: blue").replace(
        "sync_interval: 1h", "sync_interval: soon")
    found = problems(write(text))
    assert len(found) == 2
    assert "unknown key 'colour'" in found[0] and "invalid duration" in found[1]


def test_file_level_problems(write, tmp_path):
    absent = str(tmp_path / "absent.yaml")
    assert only_problem(absent) == f"{absent}: cannot read the file: No such file or directory"
    assert only_problem(write("")).endswith("edited.yaml: the file is empty")
    expected = "edited.yaml:1:1: expected a mapping at the top level, got a list"
    assert only_problem(write("- a\n- b\n")).endswith(expected)
    assert ":2:1: invalid YAML" in only_problem(write("a: [1\n"))


def test_verify_tls_takes_a_ca_bundle_relative_to_the_file(write, secrets_env):
    from pathlib import Path

    ca = write("-----BEGIN CERTIFICATE-----\n", "certs/nas-ca.pem")
    loaded = load_config(write(CONFIG.replace("verify_tls: false", "verify_tls: certs/nas-ca.pem")))
    from identityhub.config.plan import desired_state

    nas = desired_state(loaded).nases[0]
    assert (nas.verify_tls, nas.ca_file) == (True, str(Path(ca).resolve()))
    path = write(CONFIG.replace("verify_tls: false", "verify_tls: certs/missing.pem"))
    assert only_problem(path) == f"{path}:25:17: nas ds923: CA bundle certs/missing.pem not found"
    path = write(CONFIG.replace("verify_tls: false", "verify_tls: [1]"))
    assert only_problem(path) == f"{path}:25:17: expected true, false or the path of a CA bundle"


@pytest.mark.parametrize("bundle", ["a" * 300, "ca\\x00.pem"])
def test_an_unstatable_ca_bundle_is_a_problem_not_a_traceback(write, secrets_env, bundle):
    path = write(CONFIG.replace("verify_tls: false", f'verify_tls: "{bundle}"'))
    assert only_problem(path).startswith(f"{path}:25:17: nas ds923: CA bundle ")


def test_credentials_in_a_url_are_refused_without_quoting_them(write, secrets_env):
    path = write(CONFIG.replace("url: https://192.168.1.20:5001", "url: https://hub-sync:pw-in-url@192.168.1.20:5001"))
    assert only_problem(path) == f"{path}:24:10: nas ds923: url must not carry a user name or password (user@host)"


def test_malformed_urls_are_clean_errors(write, secrets_env):
    path = write(CONFIG.replace("[https://ds923.example.com:5001]", '["https://[::1"]').replace(
        "url: https://192.168.1.20:5001", "url: http://[nas"))
    assert problems(path) == [
        f"{path}:24:10: nas ds923: url 'http://[nas' is not a valid URL",
        f"{path}:33:21: client ds923-dsm: redirect URI 'https://[::1' is not a valid URL",
    ]


# --- operators -----------------------------------------------------------------------------------
OPERATORS = MINIMAL + """\
  - id: away
    members:
      - {email: B@Example.com, role: admin}
operators:
  - a@example.com
"""


def test_operators_are_optional_and_normalised(write):
    assert load_config(write(MINIMAL)).config.operators == []
    assert load_config(write(MINIMAL + "operators:\n")).config.operators == []
    loaded = load_config(write(OPERATORS + "  - b@EXAMPLE.COM\n"))  # as member emails: case-insensitive
    assert loaded.config.operators == ["a@example.com", "b@EXAMPLE.COM"]


def test_an_operator_must_be_a_declared_member(write):
    path = write(OPERATORS + "  - nobody@example.com\n")
    assert only_problem(path) == (
        f"{path}:13:5: operator nobody@example.com is not a member of any household "
        "(declare them in households first)"
    )
    flow = write(MINIMAL + "operators: [a@example.com, ghost@example.com]\n")
    assert only_problem(flow).startswith(f"{flow}:8:28: operator ghost@example.com is not a member")


def test_an_operator_listed_twice_case_insensitively(write):
    path = write(OPERATORS + "  - A@EXAMPLE.com\n")
    assert only_problem(path) == f"{path}:13:5: a@example.com is listed twice in operators (first at line 12)"


def test_operator_entries_must_be_emails_and_strings(write):
    path = write(OPERATORS + "  - not-an-email\n")
    assert only_problem(path) == f"{path}:13:5: 'not-an-email' is not an email address"
    empty = write(OPERATORS + "  -\n")
    assert only_problem(empty) == f"{empty}:13:4: expected a string, got nothing"
    scalar = write(MINIMAL + "operators: a@example.com\n")
    assert only_problem(scalar) == f"{scalar}:8:12: expected a list, got 'a@example.com'"
