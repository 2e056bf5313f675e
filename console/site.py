"""The admin site of the hub: entered through the hub's own sign-in, by role, with a dashboard."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.roles import may_enter_console


class HubAdminSite(admin.AdminSite):
    site_header = gettext_lazy("Identity Hub")
    site_title = gettext_lazy("Identity Hub")
    index_title = gettext_lazy("Your households")
    index_template = "admin/hub_index.html"
    enable_nav_sidebar = False

    def get_urls(self):
        # No console object has a public page: Django's "view on site" shortcut (/admin/r/…) would
        # only confirm that an object exists, and for DOT's Application it was a 500.
        from django.urls import path

        from .health import health_view

        health = path("health/", self.admin_view(lambda request: health_view(request, self)), name="hub-health")
        return [health] + [url for url in super().get_urls() if getattr(url, "name", None) != "view_on_site"]

    def has_permission(self, request) -> bool:
        """Operators and household admins, decided from the memberships on this request."""
        return may_enter_console(request.user)

    def login(self, request, extra_context=None):
        """No local passwords: send people to the hub's sign-in; a signed-in member gets a clear page."""
        if request.user.is_authenticated:
            return render(
                request,
                "accounts/refused.html",
                {"message": _("%(email)s is not an administrator of this hub.") % {"email": request.user.email},
                 "advice": _("Household admins (role: admin) can open the administration.")},
                status=403,
            )
        return redirect_to_login(request.GET.get("next") or reverse("admin:index"), reverse("accounts:login"))

    def index(self, request, extra_context=None):
        from .dashboard import build_dashboard, console_sections

        context = {"dashboard": build_dashboard(request.user), "sections": console_sections(self.get_app_list(request))}
        return super().index(request, {**context, **(extra_context or {})})
