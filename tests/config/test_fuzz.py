"""Generated configs and mutated YAML never crash the loader: it returns, or raises ConfigError."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from identityhub.config.errors import ConfigError
from identityhub.config.load import load_text

from .conftest import CONFIG, DSM_SECRET, GOOGLE_SECRET, SYNO_PASSWORD, WEB_SECRET

ENV = {"GOOGLE_CLIENT_SECRET": GOOGLE_SECRET, "SYNO_PASSWORD": SYNO_PASSWORD, "DSM_CLIENT_SECRET": DSM_SECRET,
       "WEB_CLIENT_SECRET": WEB_SECRET}
LINE = re.compile(r"^fuzz\.yaml(:\d+:\d+)?: \S")
FAST = hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load_or_clean_error(text: str) -> None:
    try:
        load_text(text, "fuzz.yaml", base_dir=Path("/nonexistent"), environ=ENV)
    except ConfigError as error:
        assert error.problems
        for problem in error.problems:
            assert LINE.match(str(problem)) and "\n" not in str(problem), str(problem)


SPECIAL = st.sampled_from(list(":-[]{}#&*!|>'\"%@`,?$\t\n ") + ["${", "$$", "${X}", "\ue000", "\x00", "\ufeff",
                                                                  "no", "0123", "1:30", "- ", ": ", "<<: "])


@FAST
@given(data=st.data())
def test_mutated_yaml_never_crashes(data):
    text = CONFIG
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["insert", "delete", "duplicate_line", "swap_lines", "indent"]))
        if action == "insert":
            text = text[:position] + data.draw(st.one_of(SPECIAL, st.text(max_size=5))) + text[position:]
        elif action == "delete":
            text = text[:position] + text[position + data.draw(st.integers(1, 12)):]
        else:
            lines = text.splitlines(keepends=True)
            i = data.draw(st.integers(0, len(lines) - 1))
            j = data.draw(st.integers(0, len(lines) - 1))
            if action == "duplicate_line":
                lines.insert(j, lines[i])
            elif action == "swap_lines":
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines[i] = "  " + lines[i]
            text = "".join(lines)
    load_or_clean_error(text)


KEYS = st.sampled_from(["version", "issuer", "upstreams", "households", "nas", "clients", "id", "type", "name",
                        "members", "email", "role", "household", "url", "verify_tls", "service_account",
                        "sync_interval", "accounts", "client_id", "client_secret", "client_secret_file",
                        "password_file", "redirect_uris", "households", "claims", "value", "const", "scope",
                        "skip_consent"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
                    st.sampled_from(["1", "true", "no", "15m", "https://x.example/cb", "${X:-1}", "valais",
                                     "a@example.com", "google", "oidc", "mock", "admin", "ds923"]))
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(KEYS, st.text(max_size=8)), children, max_size=5)),
    max_leaves=25,
)


@FAST
@given(body=st.dictionaries(KEYS, VALUES, max_size=6))
def test_generated_documents_never_crash(body):
    load_or_clean_error(yaml.safe_dump({"version": 1, "issuer": "http://127.0.0.1:8000", **body}))


SLUG = st.from_regex(r"[a-z0-9][a-z0-9-]{0,8}", fullmatch=True)
EMAIL = st.builds(lambda user, host: f"{user}@{host}.example", SLUG, SLUG)


@st.composite
def configs(draw):
    households = [{"id": draw(SLUG), "name": draw(st.text(max_size=10)),
                   "members": [{"email": draw(EMAIL), "role": draw(st.sampled_from(["member", "admin", "boss"]))}
                               for _ in range(draw(st.integers(0, 3)))]}
                  for _ in range(draw(st.integers(0, 3)))]
    ids = [h["id"] for h in households] + ["ghost"]
    nases = [{"id": draw(SLUG), "household": draw(st.sampled_from(ids)), "url": "https://nas.local:5001",
              "verify_tls": draw(st.sampled_from([True, False, "true", "ca.pem"])),
              "sync_interval": draw(st.sampled_from(["1h", "15m", "0s", "1x", "2d"])),
              "accounts": {draw(EMAIL): draw(st.sampled_from(["no", "0123", "1:30", "bob"]))}}
             for _ in range(draw(st.integers(0, 2)))]
    clients = [{"client_id": draw(SLUG),
                "redirect_uris": [draw(st.sampled_from(["https://a.example/cb", "http://a.example/cb",
                                                        "http://127.0.0.1/cb", "nope"]))],
                **({"nas": draw(st.sampled_from([n["id"] for n in nases]))} if nases and draw(st.booleans()) else {}),
                **({"households": [draw(st.sampled_from(ids))]} if draw(st.booleans()) else {}),
                **({"client_secret": draw(st.sampled_from([DSM_SECRET, "short", "${DSM_CLIENT_SECRET}"]))}
                   if draw(st.booleans()) else {})}
               for _ in range(draw(st.integers(0, 3)))]
    return {"version": 1, "issuer": "http://127.0.0.1:8000", "households": households, "nas": nases,
            "clients": clients}


@FAST
@given(config=configs())
def test_generated_configs_load_or_fail_cleanly(config):
    load_or_clean_error(yaml.safe_dump(config, allow_unicode=True))
