"""Identity Hub: an OpenID Connect provider for a household's apps and Synology NASes."""

from .celery import app as celery_app

__all__ = ["celery_app"]
