"""The console's hub-wide pieces: the audit trail, and the library tables it does not show."""

from __future__ import annotations

import django.contrib.auth.admin  # noqa: F401  (import the libraries' admins first, so that
import oauth2_provider.admin  # noqa: F401  they are registered before being unregistered below)
import social_django.admin  # noqa: F401
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import AccessToken, Grant, IDToken, RefreshToken
from social_django.models import Association, Nonce, UserSocialAuth

from accounts.admin_scoping import HouseholdScopedAdmin
from identityhub.audit import record_event
from identityhub.models import AuditEvent

from . import audit_scope  # noqa: F401  (registers the audit events' household scope)

# Plumbing stays out of the console: tokens, grants, social-auth's nonce tables, Django groups
# (roles come from memberships, not permission groups).
for model in (AccessToken, RefreshToken, IDToken, Grant, Association, Nonce, UserSocialAuth, Group):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


class PersonFilter(admin.SimpleListFilter):
    title = _("person")
    parameter_name = "person"

    def lookups(self, request, model_admin):
        from accounts.admin_scoping import scope_queryset
        from accounts.models import User

        return [(u.pk, u.email) for u in scope_queryset(User.objects.all(), request.user)[:200]]

    def queryset(self, request, queryset):
        return queryset.filter(user_id=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(HouseholdScopedAdmin):
    list_display = ("time", "kind", "reason", "user", "email", "client_id", "nas_id", "upstream_id")
    list_filter = ("kind", "reason", PersonFilter, "client_id", "nas_id", "time")
    search_fields = ("email", "user__email", "client_id", "nas_id")
    list_select_related = ("user",)
    date_hierarchy = "time"
    readonly_fields = ("time", "kind", "reason", "user", "email", "client_id", "nas_id", "upstream_id", "details")

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@receiver(post_save, sender=LogEntry)
def audit_admin_change(sender, instance: LogEntry, created: bool, **kwargs) -> None:
    if created:
        record_event("admin_change", user=instance.user, object=str(instance.object_repr)[:200],
                     model=instance.content_type.model if instance.content_type_id else "",
                     action={1: "add", 2: "change", 3: "delete"}.get(instance.action_flag, "?"))
