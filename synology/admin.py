"""Admin: NASes (status, "unreachable since", sync now), DSM accounts, mappings, sync runs.

The service password is write-only: never rendered, left unchanged when the field is left empty.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from .models import NAS, AccountMapping, DSMAccount, SyncRun
from .sync import sync_nas

ADMIN_SYNC_TIMEOUT: tuple[float, float] = (5.0, 20.0)


class NASForm(forms.ModelForm):
    base_url = forms.URLField(assume_scheme="https", help_text="https://192.168.1.20:5001")
    service_password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave empty to keep the stored password. Use a DSM administrator account "
        "without 2-step verification, dedicated to the hub.",
    )

    class Meta:
        model = NAS
        fields = [
            "id", "name", "household", "base_url", "verify_tls", "ca_file", "service_username", "service_password",
            "sync_interval", "enabled",
        ]

    def clean_base_url(self) -> str:
        value = self.cleaned_data.get("base_url") or ""
        if "@" in urlsplit(value).netloc:  # it would be repeated in every sync message
            raise forms.ValidationError("No user name or password in the URL: use the service account fields.")
        return value

    def clean_service_password(self) -> str:
        value = self.cleaned_data.get("service_password") or ""
        if not value and self.instance.pk:
            return NAS.objects.get(pk=self.instance.pk).service_password
        return value


def _local(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


@admin.register(NAS)
class NASAdmin(admin.ModelAdmin):
    form = NASForm
    list_display = ["id", "name", "household", "enabled", "status", "last_success_at", "next_sync_at", "managed"]
    list_filter = ["enabled", "last_status", "household"]
    search_fields = ["id", "name", "base_url"]
    readonly_fields = [
        "status", "last_message", "last_attempt_at", "last_success_at", "failing_since", "consecutive_failures",
        "next_sync_at", "managed",
    ]
    actions = ["sync_now"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "id"] if obj else self.readonly_fields

    @admin.display(description="status", ordering="last_status")
    def status(self, obj: NAS) -> str:
        if obj.last_status in (NAS.Status.OK, NAS.Status.NEVER) or not obj.failing_since:
            return obj.get_last_status_display()
        return f"{obj.get_last_status_display()} since {_local(obj.failing_since)}"

    @admin.action(description="Sync now (in the foreground)")
    def sync_now(self, request, queryset) -> None:
        for nas in queryset:
            result = sync_nas(nas.pk, trigger="admin", timeout=ADMIN_SYNC_TIMEOUT)
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(request, result.summary(), level)


@admin.register(DSMAccount)
class DSMAccountAdmin(admin.ModelAdmin):
    """Read-only except the person: choosing one makes an admin link the sync never overwrites."""

    list_display = ["name", "nas", "email", "present", "expired", "user", "linked_by", "link_note", "last_seen"]
    list_filter = ["nas", "present", "expired", "linked_by"]
    search_fields = ["name", "email", "user__email", "description"]
    list_select_related = ["nas", "user"]
    autocomplete_fields: list[str] = []
    raw_id_fields = ["user"]
    fields = [
        "nas", "name", "uid", "email", "description", "expired", "present", "first_seen", "last_seen", "user",
        "linked_by", "link_note",
    ]
    readonly_fields = [f for f in fields if f != "user"]

    def has_add_permission(self, request) -> bool:
        return False

    def save_model(self, request, obj: DSMAccount, form, change) -> None:
        if "user" in form.changed_data:
            # A person chosen here is an admin link; clearing it hands the account back to the sync.
            obj.linked_by = DSMAccount.LinkedBy.ADMIN if obj.user_id else ""
            obj.link_note = "" if obj.user_id else "admin link removed"
        super().save_model(request, obj, form, change)


@admin.register(AccountMapping)
class AccountMappingAdmin(admin.ModelAdmin):
    list_display = ["nas", "email", "account_name", "managed", "linked"]
    list_filter = ["nas", "managed"]
    search_fields = ["email", "account_name"]
    readonly_fields = ["managed"]

    @admin.display(description="account synced", boolean=True)
    def linked(self, obj: AccountMapping) -> bool:
        return DSMAccount.objects.filter(nas_id=obj.nas_id, name=obj.account_name, linked_by="explicit").exists()


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ["started", "nas", "trigger", "outcome_badge", "new", "changed", "unchanged", "absent",
                    "duration_ms", "message"]
    list_filter = ["nas", "outcome", "trigger"]
    date_hierarchy = "started"

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, obj: SyncRun):
        colour = "green" if obj.outcome == SyncRun.Outcome.OK else "#b00"
        return format_html('<b style="color:{}">{}</b>', colour, obj.get_outcome_display())

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
