from django.apps import AppConfig


class SynologyConfig(AppConfig):
    name = "synology"
    verbose_name = "Synology NASes"
