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
        """Runs on every signed-in request: a plain query (the ORM's compile costs more than it)."""
        model = get_user_model()
        sql = f"SELECT * FROM {model._meta.db_table} WHERE id = %s"  # noqa: S608 — table from model meta
        user = next(iter(model._default_manager.raw(sql, [model._meta.pk.to_python(user_id)])), None)
        return user if user is not None and user.is_active else None
