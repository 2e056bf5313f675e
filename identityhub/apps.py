import logging

from django.apps import AppConfig
from django.conf import settings


class IdentityHubConfig(AppConfig):
    name = "identityhub"
    label = "identityhub"
    verbose_name = "Identity Hub"

    def ready(self) -> None:
        from . import checks  # noqa: F401  registers the hub's system checks
        from .loopback import DEBUG_REMOTE_WARNING

        if settings.DEBUG and getattr(settings, "HUB_DEBUG_ALLOW_REMOTE", False):
            # Every process says it (web, worker, commands), not only those that run system checks.
            logging.getLogger("identityhub").warning(DEBUG_REMOTE_WARNING)
