"""social-auth strategy whose `authenticate` calls the upstream's backend directly.

Upstream backends are built from the database (accounts.upstreams), so they are not listed in
AUTHENTICATION_BACKENDS, which Django's `authenticate()` would loop over.
"""

from social_django.strategy import DjangoStrategy


class HubStrategy(DjangoStrategy):
    def authenticate(self, backend, **kwargs):
        kwargs["strategy"] = self
        kwargs["storage"] = self.storage
        kwargs["backend"] = backend
        kwargs.pop("request", None)
        return backend.authenticate(self.request, **kwargs)
