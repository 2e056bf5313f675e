from django.apps import AppConfig


class OidcConfig(AppConfig):
    name = "identityhub.oidc"
    label = "oidc"
    verbose_name = "OpenID Connect clients"

    def ready(self) -> None:
        from . import signals  # noqa: F401
