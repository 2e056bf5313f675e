from django.apps import AppConfig


class IdentityHubConfig(AppConfig):
    name = "identityhub"
    label = "identityhub"
    verbose_name = "Identity Hub"
