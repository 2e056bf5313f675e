"""social-auth strategy whose `authenticate` calls the upstream's backend directly.

Upstream backends are built from the database (accounts.upstreams), so they are not listed in
AUTHENTICATION_BACKENDS, which Django's `authenticate()` would loop over.
"""

from urllib.parse import urljoin

from django.conf import settings
from social_django.strategy import DjangoStrategy


class HubStrategy(DjangoStrategy):
    def build_absolute_uri(self, path=None):
        """Absolute URLs (the upstream's redirect URI above all) come from the configured issuer,
        not from the request's Host/scheme, so they are right behind any proxy."""
        if path and "://" in path:
            return path
        return urljoin(settings.HUB_ISSUER + "/", path or "")

    def authenticate(self, backend, **kwargs):
        kwargs["strategy"] = self
        kwargs["storage"] = self.storage
        kwargs["backend"] = backend
        kwargs.pop("request", None)
        return backend.authenticate(self.request, **kwargs)
