from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "People"

    def ready(self) -> None:
        from identityhub import housekeeping

        from . import signals  # noqa: F401  (connects the membership receivers)
        from .housekeeping import housekeeping as accounts_housekeeping

        housekeeping.register("accounts", accounts_housekeeping)
