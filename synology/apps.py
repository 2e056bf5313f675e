from django.apps import AppConfig


class SynologyConfig(AppConfig):
    name = "synology"
    verbose_name = "Synology NASes"

    def ready(self) -> None:
        from identityhub import housekeeping

        from .services import housekeeping as synology_housekeeping

        housekeeping.register("synology", synology_housekeeping)
