from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy
from oauth2_provider import apps as dot_apps


class ConsoleConfig(AppConfig):
    """The household console: the admin site's dashboard, templates and audit trail."""

    default = True
    name = "console"
    verbose_name = gettext_lazy("Household console")


class HubAdminConfig(admin_apps.AdminConfig):
    """Django's admin app, with the hub's site (role checks, dashboard) as its default site."""

    default = False
    default_site = "console.site.HubAdminSite"


class HubDOTConfig(dot_apps.DOTConfig):
    """django-oauth-toolkit, named as the console names its clients."""

    default = False
    verbose_name = gettext_lazy("Apps")
