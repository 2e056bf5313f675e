from django.apps import AppConfig


class SynologyConfig(AppConfig):
    name = "synology"
    verbose_name = "Synology NASes"

    def ready(self) -> None:
        from identityhub import housekeeping, metrics

        from .metrics import collect_sync_metrics
        from .services import housekeeping as synology_housekeeping

        housekeeping.register("synology", synology_housekeeping)
        metrics.register_collector("synology", collect_sync_metrics)  # /metrics reads SyncRun and NAS rows
