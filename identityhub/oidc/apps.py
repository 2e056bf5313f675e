from django.apps import AppConfig


class OidcConfig(AppConfig):
    name = "identityhub.oidc"
    label = "oidc"
    verbose_name = "OpenID Connect clients"

    def ready(self) -> None:
        from identityhub import housekeeping

        from . import backchannel, signals  # noqa: F401
        from .housekeeping import housekeeping as provider_housekeeping

        housekeeping.register("provider", provider_housekeeping)
        backchannel.connect_receivers()  # sign-outs, deactivations, households left (accounts' signals)
