"""Admin site: entered through the upstream login (no local passwords), plus the audit trail."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.views import redirect_to_login
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.shortcuts import render
from django.urls import reverse

from .audit import record_event
from .models import AuditEvent


def admin_login(request, extra_context=None):
    """Send people to the hub's own sign-in; a signed-in non-admin gets a clear page, not a loop."""
    if request.user.is_authenticated:
        return render(
            request,
            "accounts/refused.html",
            {"message": f"{request.user.email} is not an administrator of this hub.",
             "advice": "Household admins (role: admin in the config) can open the administration."},
            status=403,
        )
    return redirect_to_login(request.GET.get("next") or reverse("admin:index"), reverse("accounts:login"))


admin.site.login = admin_login
admin.site.site_header = "Identity Hub"
admin.site.site_title = "Identity Hub"


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("time", "kind", "reason", "user", "email", "client_id", "nas_id", "upstream_id")
    list_filter = ("kind", "reason", "client_id", "nas_id", "upstream_id")
    search_fields = ("email", "user__email", "client_id", "nas_id")
    date_hierarchy = "time"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@receiver(post_save, sender=LogEntry)
def audit_admin_change(sender, instance: LogEntry, created: bool, **kwargs) -> None:
    if created:
        record_event("admin_change", user=instance.user, object=str(instance.object_repr)[:200],
                     model=instance.content_type.model if instance.content_type_id else "",
                     action={1: "add", 2: "change", 3: "delete"}.get(instance.action_flag, "?"))
