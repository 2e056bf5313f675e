"""pytest plugin (loaded with -p, before pytest-django): test environment defaults.

Tests run with HUB_DEBUG=0 (production behaviour: the mock upstream is refused) and a fixed
test secret. DATABASE_URL / REDIS_URL come from the environment: SQLite and no Redis by default,
PostgreSQL and Redis in CI (.ci/run sets them and HUB_REQUIRE_SERVICES=1).

The caller's own HUB_* environment never reaches the suite (`HUB_ISSUER=… make test` gives the same
results): every inherited HUB_* variable is dropped, except those in KEEP_FROM_CALLER, before the
test values below are set. tests/deploy/test_testenv.py proves it.
"""

import os

KEEP_FROM_CALLER = {"HUB_REQUIRE_SERVICES"}  # CI sets it on purpose (tests/conftest.py)
for _name in [name for name in os.environ if name.startswith("HUB_") and name not in KEEP_FROM_CALLER]:
    del os.environ[_name]

os.environ.setdefault("HUB_DEBUG", "0")
os.environ.setdefault("HUB_SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("HUB_ENCRYPTION_KEY", "8mB2kTq3Zy0VQqTeXMyv2H8sCeAJjH0EnQkCLvXb0n0=")
os.environ.setdefault("HUB_ISSUER", "http://127.0.0.1:8000")
os.environ.setdefault("HUB_VAR_DIR", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "var", "test"))
# The suite signs in many times from 127.0.0.1 within a minute (and, in CI, several workers share one
# Redis): rate limits far above that. tests/hardening/test_sign_in_security.py sets tiny ones itself.
for _name in ("HUB_RATELIMIT_LOGIN", "HUB_RATELIMIT_COMPLETE", "HUB_RATELIMIT_TOKEN_FAILURES",
              "HUB_RATELIMIT_TOKEN_CLIENT_FAILURES", "HUB_RATELIMIT_ACCESS_REQUEST",
              "HUB_RATELIMIT_PASSKEY"):
    os.environ.setdefault(_name, "100000/m")
