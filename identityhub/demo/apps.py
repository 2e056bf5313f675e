from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "identityhub.demo"
    label = "demo"
    verbose_name = "Demo relying party (development only)"
