"""The session backend: people only ever sign in through an upstream (see accounts.views)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class UpstreamSessionBackend(ModelBackend):
    """Loads the signed-in person for each request; never authenticates a password.

    `createsuperuser` still works for bootstrap, but the admin is entered through `/login/`.
    """

    def authenticate(self, request, **credentials):
        return None

    def get_user(self, user_id):
        try:
            user = get_user_model()._default_manager.get(pk=user_id)
        except get_user_model().DoesNotExist:
            return None
        return user if user.is_active else None
