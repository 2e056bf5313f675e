from django.apps import AppConfig


class JoiningConfig(AppConfig):
    """Invitations and access requests. Above accounts, synology and the provider; the console and
    the hub command sit above it. Refusal pages reach it through accounts.refusals."""

    name = "joining"
    verbose_name = "Joining"

    def ready(self) -> None:
        from accounts.refusals import register_offer

        from .offers import ask_for_access_offer

        register_offer(ask_for_access_offer)
