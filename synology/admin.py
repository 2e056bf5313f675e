"""The console's NAS pages: status, accounts and who they belong to, mappings, sync runs, and the
"Test connection" / "Sync now" buttons. Scoped by household like every console page.

The service password is write-only: never rendered, left unchanged when the field is left empty
— except when the NAS's URL changes, which asks for it again (it would otherwise be sent to a
new, possibly foreign, address).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from accounts.admin_scoping import HouseholdScopedAdmin, HouseholdScopedInline, register_scope, scope_queryset
from accounts.models import User
from accounts.roles import is_operator

from . import services
from .models import NAS, AccountMapping, DSMAccount, SyncRun
from .selectors import sync_health

register_scope(NAS, lambda ids: Q(household_id__in=ids))
register_scope(DSMAccount, lambda ids: Q(nas__household_id__in=ids))
register_scope(AccountMapping, lambda ids: Q(nas__household_id__in=ids))
register_scope(SyncRun, lambda ids: Q(nas__household_id__in=ids))

RECENT_RUNS = 10


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def nas_url_problem(url: str) -> str | None:
    """The same rule as `hub check`: https, or http on loopback only; no credentials in the URL."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return _("No user name or password in the URL: use the service account fields.")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        return _("Use https: with http the service password would cross the network in clear "
                 "(http is accepted on loopback only).")
    if parts.scheme not in {"http", "https"}:
        return _("The URL must start with https://")
    return None


# DSM refuses these in account and group names (the reference); a comma separates the list's names.
_GROUP_FORBIDDEN = set('!"#$%&\'()*+,/:;<=>?@[\\]^`{|}~')


class GroupNamesField(forms.CharField):
    """A list of DSM group names, typed as one comma-separated line ("family, photos")."""

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value) -> list[str]:
        names: list[str] = []
        for part in (super().to_python(value) or "").split(","):
            part = " ".join(part.split())
            if part and part not in names:
                names.append(part)
        return names

    def validate(self, value) -> None:
        super().validate(value)
        for name in value:
            if len(name) > 64 or any(c in _GROUP_FORBIDDEN or not c.isprintable() for c in name):
                raise forms.ValidationError(_("“%(name)s” is not a DSM group name."), params={"name": name})


class NASForm(forms.ModelForm):
    base_url = forms.URLField(assume_scheme="https", label=_("URL"), help_text="https://192.168.1.20:5001")
    service_password = forms.CharField(
        required=False,
        label=_("Service password"),
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Write-only. Leave empty to keep the stored password. Use a DSM administrator account "
                    "without 2-step verification, dedicated to the hub."),
    )
    new_account_groups = GroupNamesField(
        required=False,
        label=_("Groups for new accounts"),
        help_text=_("DSM groups, separated by commas, that an account the hub creates on this NAS joins "
                    "(every account is in “users” already)."),
    )

    class Meta:
        model = NAS
        fields = [
            "id", "name", "household", "base_url", "verify_tls", "ca_file", "service_username", "service_password",
            "sync_interval", "enabled", "new_account_groups",
        ]

    def clean_base_url(self) -> str:
        value = self.cleaned_data.get("base_url") or ""
        problem = nas_url_problem(value)
        if problem:
            raise forms.ValidationError(problem)
        return value

    def clean(self):
        cleaned = super().clean()
        typed = cleaned.get("service_password") or ""
        if self.instance.pk and not typed:
            stored = NAS.objects.get(pk=self.instance.pk)
            if "base_url" in cleaned and cleaned["base_url"] != stored.base_url:
                self.add_error("service_password", _("The URL changed: type the service password again."))
            elif "service_username" in cleaned and cleaned["service_username"] != stored.service_username:
                self.add_error("service_password", _("The user name changed: type its password."))
            else:
                cleaned["service_password"] = stored.service_password
        return cleaned


class MappingInline(HouseholdScopedInline, admin.TabularInline):
    model = AccountMapping
    extra = 0
    fields = ["email", "account_name", "managed"]
    readonly_fields = ["managed"]


def _local(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


@admin.register(NAS)
class NASAdmin(HouseholdScopedAdmin):
    form = NASForm
    list_display = ["id", "name", "household", "enabled", "status", "last_success_at", "next_sync_at", "managed"]
    list_filter = ["enabled", "last_status", "household"]
    search_fields = ["id", "name", "base_url"]
    readonly_fields = [
        "status", "last_message", "last_attempt_at", "last_success_at", "next_sync_at", "managed",
        "accounts_table", "recent_runs",
    ]
    fieldsets = [
        (None, {"fields": ["id", "name", "household", "enabled", "managed"]}),
        (_("Status"), {"fields": ["status", "last_message", "last_attempt_at", "last_success_at", "next_sync_at"]}),
        (_("Connection"), {"fields": ["base_url", "verify_tls", "ca_file", "service_username", "service_password",
                                      "sync_interval"]}),
        (_("New accounts"), {"fields": ["new_account_groups"]}),
        (_("Accounts on this NAS"), {"fields": ["accounts_table"]}),
        (_("Recent sync runs"), {"fields": ["recent_runs"]}),
    ]
    inlines = [MappingInline]
    actions = ["sync_now", "test_connection"]

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["id", "name", "household", "enabled"]}), self.fieldsets[2]]
        return self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "id"] if obj else self.readonly_fields

    def get_object_tools(self, request, obj) -> list[dict]:
        return [
            {"id": "test-connection", "label": _("Test connection"),
             "url": reverse("admin:synology_nas_test", args=[obj.pk])},
            {"id": "sync-now", "label": _("Sync now"), "url": reverse("admin:synology_nas_sync", args=[obj.pk])},
        ]

    def get_urls(self):
        own = [
            path("<path:object_id>/test/", self.admin_site.admin_view(self.test_view), name="synology_nas_test"),
            path("<path:object_id>/sync/", self.admin_site.admin_view(self.sync_view), name="synology_nas_sync"),
        ]
        return own + super().get_urls()

    def _scoped_nas(self, request, object_id) -> NAS:
        nas = self.get_object(request, object_id)
        if nas is None or not self.has_view_permission(request, nas):
            raise Http404("No NAS with this id.")
        return nas

    def test_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        nas = self._scoped_nas(request, object_id)
        self._report_test(request, nas)
        return HttpResponseRedirect(reverse("admin:synology_nas_change", args=[nas.pk]))

    def sync_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        nas = self._scoped_nas(request, object_id)
        self._queue_sync(request, nas)
        return HttpResponseRedirect(reverse("admin:synology_nas_change", args=[nas.pk]))

    def _report_test(self, request, nas: NAS) -> None:
        report = services.test_connection(nas)
        self.message_user(request, report.message, messages.SUCCESS if report.ok else messages.ERROR)

    def _queue_sync(self, request, nas: NAS) -> None:
        try:
            message = services.request_sync(nas, trigger="admin")
        except services.SyncRefused as refusal:
            self.message_user(request, str(refusal), messages.ERROR)
        else:
            self.message_user(request, _("%(message)s: the result appears below when the worker has run it.")
                              % {"message": message}, messages.SUCCESS)

    @admin.action(description=_("Sync now"))
    def sync_now(self, request, queryset) -> None:
        for nas in queryset:
            self._queue_sync(request, nas)

    @admin.action(description=_("Test connection"))
    def test_connection(self, request, queryset) -> None:
        for nas in queryset:
            self._report_test(request, nas)

    @admin.display(description=_("status"), ordering="last_status")
    def status(self, obj: NAS) -> str:
        return sync_health(obj)

    @admin.display(description=_("accounts"))
    def accounts_table(self, nas: NAS) -> str:
        if not nas.pk:
            return "-"
        rows = [
            (reverse("admin:synology_dsmaccount_change", args=[a.pk]), a.name, a.email or "—",
             a.user.email if a.user_id else _("nobody"), a.get_linked_by_display() if a.user_id else a.link_note,
             "" if a.present else _("absent"))
            for a in nas.accounts.select_related("user").order_by("name")[:500]
        ]
        if not rows:
            return _("No accounts synced yet: press Sync now.")
        head = format_html("<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>",
                           _("account"), _("email in DSM"), _("belongs to"), _("how"))
        body = format_html_join("", '<tr><td><a href="{}"><code>{}</code></a></td><td>{}</td><td>{}</td>'
                                    "<td>{}</td><td>{}</td></tr>", rows)
        return format_html('<table class="hub-table">{}{}</table>', head, body)

    @admin.display(description=_("sync runs"))
    def recent_runs(self, nas: NAS) -> str:
        if not nas.pk:
            return "-"
        rows = [(_local(r.started), r.trigger,
                 r.get_outcome_display(), f"+{r.new} ~{r.changed} ={r.unchanged} -{r.absent}", r.message)
                for r in nas.sync_runs.all()[:RECENT_RUNS]]
        if not rows:
            return _("No sync has run yet.")
        return format_html('<table class="hub-table" id="sync-runs">{}</table>', format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows))


class DSMAccountForm(forms.ModelForm):
    class Meta:
        model = DSMAccount
        fields = ["user"]

    def clean_user(self):
        user = self.cleaned_data.get("user")
        nas = self.instance.nas
        if user is not None and not user.memberships.filter(household_id=nas.household_id).exists():
            raise forms.ValidationError(_("Only members of %(household)s can own an account on this NAS.")
                                        % {"household": nas.household})
        return user


@admin.register(DSMAccount)
class DSMAccountAdmin(HouseholdScopedAdmin):
    """Read-only except the person: choosing one makes an admin link the sync never overwrites."""

    form = DSMAccountForm
    household_admin_may_add = False
    household_admin_may_delete = False
    list_display = ["name", "nas", "email", "present", "expired", "user", "linked_by", "link_note", "last_seen"]
    list_filter = ["nas", "present", "expired", "linked_by", ("user", admin.EmptyFieldListFilter)]
    search_fields = ["name", "email", "user__email", "description"]
    list_select_related = ["nas", "user"]
    fields = [
        "nas", "name", "uid", "email", "description", "expired", "present", "first_seen", "last_seen", "user",
        "linked_by", "link_note",
    ]
    readonly_fields = [f for f in fields if f != "user"]

    def has_add_permission(self, request, *args) -> bool:
        return False  # accounts come from the NAS's listing

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # an account missing from a listing is marked absent, never deleted

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "user":
            field.queryset = scope_queryset(User.objects.filter(is_active=True), request.user)
        return field

    def save_model(self, request, obj: DSMAccount, form, change) -> None:
        if "user" in form.changed_data:
            services.link_account(obj, obj.user)
        else:
            super().save_model(request, obj, form, change)


class MappingForm(forms.ModelForm):
    class Meta:
        model = AccountMapping
        fields = ["nas", "email", "account_name"]


@admin.register(AccountMapping)
class AccountMappingAdmin(HouseholdScopedAdmin):
    form = MappingForm
    list_display = ["nas", "email", "account_name", "managed", "linked"]
    list_filter = ["nas", "managed"]
    search_fields = ["email", "account_name"]
    readonly_fields = ["managed"]

    @admin.display(description=_("account synced"), boolean=True)
    def linked(self, obj: AccountMapping) -> bool:
        return DSMAccount.objects.filter(nas_id=obj.nas_id, name=obj.account_name, linked_by="explicit").exists()


@admin.register(SyncRun)
class SyncRunAdmin(HouseholdScopedAdmin):
    list_display = ["started", "nas", "trigger", "outcome_badge", "new", "changed", "unchanged", "absent",
                    "duration_ms", "message"]
    list_filter = ["nas", "outcome", "trigger"]
    list_select_related = ["nas"]
    date_hierarchy = "started"

    @admin.display(description=_("outcome"), ordering="outcome")
    def outcome_badge(self, obj: SyncRun):
        css = "hub-ok" if obj.outcome == SyncRun.Outcome.OK else "hub-bad"
        return format_html('<span class="{}">{}</span>', css, obj.get_outcome_display())

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return is_operator(request.user)
