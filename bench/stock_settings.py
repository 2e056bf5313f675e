"""Benchmark only: the same project on stock django-oauth-toolkit behaviour, for comparison.

DOT's own validator and authorization/token views, its default client-secret hasher (PBKDF2,
Django's first password hasher) and PKCE required for every client. Not used by the product.
"""

from identityhub.settings import *  # noqa: F403

OAUTH2_PROVIDER = {
    **OAUTH2_PROVIDER,  # noqa: F405
    "OAUTH2_VALIDATOR_CLASS": "oauth2_provider.oauth2_validators.OAuth2Validator",
    "CLIENT_SECRET_HASHER": "default",
    "PKCE_REQUIRED": True,
}
ROOT_URLCONF = "bench.stock_urls"
