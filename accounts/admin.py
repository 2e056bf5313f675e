"""The console's people pages: persons, households (members inline) and, for operators, upstreams."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import update_session_auth_hash
from django.db.models import Prefetch, Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from social_django.models import UserSocialAuth

from identityhub.models import AuditEvent

from . import services
from .admin_scoping import (
    HouseholdScopedAdmin,
    HouseholdScopedInline,
    OperatorOnlyAdmin,
    register_scope,
    scope_queryset,
)
from .hub_session import end_hub_sessions, request_sign_out
from .models import Household, Membership, Passkey, Upstream, User
from .passkeys import remove_passkey
from .roles import is_operator

register_scope(Household, lambda ids: Q(pk__in=ids))
register_scope(User, lambda ids: Q(memberships__household_id__in=ids), distinct=True)
register_scope(Membership, lambda ids: Q(household_id__in=ids))
register_scope(UserSocialAuth, lambda ids: Q(user__memberships__household_id__in=ids), distinct=True)
register_scope(Passkey, lambda ids: Q(user__memberships__household_id__in=ids), distinct=True)

RECENT_ACTIVITY = 10


class MembershipInline(HouseholdScopedInline, admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    verbose_name = _("member")
    verbose_name_plural = _("members")


class PersonMembershipInline(MembershipInline):
    """On a person's page: their households (only the ones this admin administers)."""

    autocomplete_fields: list[str] = []
    fields = ["household", "role"]
    verbose_name = _("household")
    verbose_name_plural = _("households")


class UpstreamLinkInline(HouseholdScopedInline, admin.TabularInline):
    """Linked sign-ins: (upstream, subject). Removing one unlinks that sign-in; nothing else changes."""

    model = UserSocialAuth
    fields = ("provider", "uid", "created", "modified")
    readonly_fields = fields
    extra = 0
    verbose_name = _("linked sign-in")
    verbose_name_plural = _("linked sign-ins")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class PasskeyFormSet(forms.BaseInlineFormSet):
    """Deleting a passkey from the person's page goes through `remove_passkey` (audited, by whom)."""

    removed_by = None  # the console user, set per request by PasskeyInline.get_formset

    def delete_existing(self, obj, commit=True) -> None:
        if commit:
            remove_passkey(obj, by=self.removed_by)


class PasskeyInline(HouseholdScopedInline, admin.TabularInline):
    """The person's passkeys, read-only; removing one (the row's checkbox, or its Remove link, which
    also works on a config-managed person's read-only page) means it no longer signs them in."""

    model = Passkey
    formset = PasskeyFormSet
    fields = ("name", "created_at", "last_used_at", "synced", "remove_link")
    readonly_fields = fields
    extra = 0
    verbose_name = _("passkey")
    verbose_name_plural = _("passkeys")

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # only the person adds their passkeys, from their own device

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        return type(formset.__name__, (formset,), {"removed_by": request.user})

    @admin.display(description=_("synced"), boolean=True)
    def synced(self, passkey: Passkey) -> bool:
        return passkey.backup_state

    @admin.display(description=_("remove"))
    def remove_link(self, passkey: Passkey) -> str:
        if not passkey.pk:
            return "-"
        return format_html('<a class="deletelink" id="remove-passkey-{}" href="{}">{}</a>', passkey.pk,
                           reverse("admin:accounts_passkey_delete", args=[passkey.pk]), _("Remove…"))


@admin.register(Passkey)
class PasskeyAdmin(HouseholdScopedAdmin):
    """Only the Remove page behind the Person page's passkey rows (not listed in the console's index):
    scoped like every household object (another household's passkey is a 404), audited."""

    household_admin_may_add = False
    list_display = ("name", "user", "created_at", "last_used_at", "backup_state")
    fields = ("user", "name", "created_at", "last_used_at", "backup_eligible", "backup_state", "aaguid")
    readonly_fields = fields
    actions = None

    def get_model_perms(self, request) -> dict:
        return {}  # reached from the Person page only

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request, obj) -> None:
        request.hub_passkey_person = obj.user_id
        remove_passkey(obj, by=request.user)

    def response_delete(self, request, obj_display, obj_id):
        person = getattr(request, "hub_passkey_person", None)
        if person is None:
            return super().response_delete(request, obj_display, obj_id)
        messages.success(request, _("The passkey “%(name)s” is removed: it no longer signs anyone in.")
                         % {"name": obj_display})
        return HttpResponseRedirect(reverse("admin:accounts_user_change", args=[person]))


class PersonAddForm(forms.ModelForm):
    """A new person joins a household at once: household admins can only add people to theirs."""

    household = forms.ModelChoiceField(queryset=Household.objects.none(), label=_("Household"))
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER, label=_("Role"))

    class Meta:
        model = User
        fields = ["email", "name"]

    def clean_email(self) -> str:
        from .models import normalize_email

        email = normalize_email(self.cleaned_data["email"])
        if User.objects.filter(email=email).exists():
            raise forms.ValidationError(_("A person with this email exists already: add them to the household "
                                          "from the household's page."))
        return email


@admin.register(User)
class PersonAdmin(HouseholdScopedAdmin):
    household_admin_may_delete = False  # people leave a household; only operators delete a person
    list_display = ("email", "name", "household_list", "is_active", "is_superuser", "last_login")
    list_filter = ("is_active", "is_superuser", "managed", "households")
    search_fields = ("email", "name")
    ordering = ("email",)
    readonly_fields = ("public_id", "last_login", "date_joined", "managed", "dsm_accounts", "recent_activity")
    inlines = [PersonMembershipInline, UpstreamLinkInline, PasskeyInline]

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return ((None, {"fields": ("email", "name", "household", "role")}),)
        main = ("email", "name", "public_id", "is_active", "managed")
        sets = [(None, {"fields": main}),
                (_("NAS accounts"), {"fields": ("dsm_accounts",)}),
                (_("Recent sign-ins and refusals"), {"fields": ("recent_activity",)})]
        if is_operator(request.user):
            sets.insert(1, (_("Operator"), {"fields": ("is_superuser",), "description": _(
                "Operators run the whole hub: upstreams, signing keys and every household.")}))
        sets.append((_("Dates"), {"fields": ("last_login", "date_joined")}))
        return sets

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = PersonAddForm
            form = super().get_form(request, obj, change=change, **kwargs)
            form.base_fields["household"].queryset = scope_queryset(Household.objects.all(), request.user)
            return form
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and not is_operator(request.user):
            # Hub-wide facts about a person (identity, active flag) are the operators'; a person may
            # belong to other households too.
            fields += ["email", "is_active"]
        return fields

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        household = form.cleaned_data["household"]
        user = services.add_member(household, obj.email, obj.name, form.cleaned_data["role"])
        obj.pk = user.pk
        obj.__dict__.update(user.__dict__)

    def get_queryset(self, request):
        # Only the memberships this admin may see (a person can belong to other households too).
        visible = Prefetch("memberships", queryset=scope_queryset(Membership.objects.all(), request.user))
        return super().get_queryset(request).prefetch_related(visible)

    def get_object(self, request, object_id, from_field=None):
        person = super().get_object(request, object_id, from_field)
        if person is not None:
            person.console_viewer = request.user  # per-request object: the read-only panels scope by it
        return person

    # --- Sign out everywhere (a POST-only object tool) --------------------------------------------
    def get_object_tools(self, request, obj) -> list[dict]:
        if not self.has_view_permission(request, obj):
            return []
        return [{"id": "sign-out-everywhere", "label": _("Sign out everywhere"),
                 "url": reverse("admin:accounts_user_sign_out_everywhere", args=[obj.pk])}]

    def get_urls(self):
        own = [path("<path:object_id>/sign-out-everywhere/", self.admin_site.admin_view(self.sign_out_everywhere_view),
                    name="accounts_user_sign_out_everywhere")]
        return own + super().get_urls()

    def sign_out_everywhere_view(self, request, object_id):
        """Every app the person signed in to gets a logout token and loses its tokens; every hub
        session of the person ends. Only for people this admin may see (404 otherwise)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        person = self.get_object(request, unquote(object_id))
        if person is None or not self.has_view_permission(request, person):
            raise Http404("No person with this id.")
        ended = request_sign_out(person, reason="console")
        end_hub_sessions(person)
        if person.pk == request.user.pk:
            update_session_auth_hash(request, person)  # this console session stays
        self.log_change(request, person, "Signed out everywhere.")
        messages.success(request, ngettext(
            "%(person)s is signed out everywhere (%(count)s app session ended).",
            "%(person)s is signed out everywhere (%(count)s app sessions ended).", ended,
        ) % {"person": person.email, "count": ended})
        return HttpResponseRedirect(reverse("admin:accounts_user_change", args=[person.pk]))

    @admin.display(description=_("households"))
    def household_list(self, user: User) -> str:
        return ", ".join(sorted(m.household_id for m in user.memberships.all()))

    @admin.display(description=_("DSM account per NAS"))
    def dsm_accounts(self, user: User) -> str:
        from synology.models import DSMAccount  # console pages read across apps

        accounts = scope_queryset(DSMAccount.objects.all(), user.console_viewer).filter(user=user)
        rows = [(reverse("admin:synology_dsmaccount_change", args=[a.pk]), a.nas_id, a.name,
                 "" if a.present else _(" (absent from the last listing)")) for a in accounts.select_related("nas")]
        link = reverse("admin:synology_dsmaccount_changelist") + "?user__isnull=True"
        table = format_html_join("", '<li><a href="{}">{}: <code>{}</code></a>{}</li>', rows) if rows else \
            format_html("<li>{}</li>", _("No DSM account linked."))
        return format_html('<ul class="hub-list">{}</ul><p><a href="{}">{}</a></p>', table, link,
                           _("Link a DSM account (pick the account, then this person)"))

    @admin.display(description=_("recent activity"))
    def recent_activity(self, user: User) -> str:
        # The audit trail's household scope is registered by the console (it knows NASes and apps).
        events = scope_queryset(AuditEvent.objects.all(), user.console_viewer).filter(
            user=user, kind__in=[AuditEvent.Kind.SIGN_IN, AuditEvent.Kind.REFUSAL])[:RECENT_ACTIVITY]
        rows = [(e.time.strftime("%Y-%m-%d %H:%M"), e.get_kind_display(), e.reason, e.client_id or e.upstream_id
                 or (e.details or {}).get("method", ""))
                for e in events]
        if not rows:
            return _("Nothing recorded yet.")
        return format_html('<table class="hub-table">{}</table>', format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows))



@admin.register(Household)
class HouseholdAdmin(HouseholdScopedAdmin):
    household_admin_may_add = False  # households are the operators' to create and remove
    household_admin_may_delete = False
    list_display = ("id", "name", "managed")
    search_fields = ("id", "name")
    inlines = [MembershipInline]
    readonly_fields = ("managed", "nases", "apps")
    fields = ("id", "name", "managed", "nases", "apps")

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "id"] if obj else self.readonly_fields

    @admin.display(description=_("NASes"))
    def nases(self, household: Household) -> str:
        if not household.pk:
            return "-"
        rows = [(reverse("admin:synology_nas_change", args=[n.pk]), str(n)) for n in household.nases.all()]
        return format_html_join(", ", '<a href="{}">{}</a>', rows) or _("none yet")

    @admin.display(description=_("apps"))
    def apps(self, household: Household) -> str:
        if not household.pk:
            return "-"
        from oauth2_provider.models import Application

        apps = Application.objects.filter(
            Q(profile__households=household) | Q(profile__nas__household=household)).distinct()
        rows = [(reverse("admin:oauth2_provider_application_change", args=[a.pk]), a.name or a.client_id)
                for a in apps]
        return format_html_join(", ", '<a href="{}">{}</a>', rows) or _("none yet")


class UpstreamForm(forms.ModelForm):
    class Meta:
        model = Upstream
        fields = ["id", "type", "name", "issuer", "client_id", "client_secret", "allowed_domains", "enabled",
                  "position"]
        widgets = {"client_secret": forms.PasswordInput(render_value=False)}

    def clean_client_secret(self):
        # Write-only: an empty field keeps the stored secret.
        return self.cleaned_data["client_secret"] or (self.instance.client_secret if self.instance.pk else "")


@admin.register(Upstream)
class UpstreamAdmin(OperatorOnlyAdmin):
    form = UpstreamForm
    list_display = ("id", "type", "name", "issuer", "enabled", "managed", "redirect_uri")
    readonly_fields = ("managed", "redirect_uri")

    def save_model(self, request, obj, form, change) -> None:
        """A changed issuer drops the upstream's sign-in links (they are bound to the issuer they
        were made under), in the same transaction as the change, and says so."""
        from django.contrib import messages
        from django.db import transaction
        from django.utils.translation import ngettext

        previous = Upstream.objects.filter(pk=obj.pk).first() if change else None
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            dropped = services.drop_links_on_issuer_change(obj, previous.effective_issuer) if previous else 0
        if dropped:
            self.message_user(request, ngettext(
                "The issuer changed: %(count)d sign-in link was dropped; people link again by their "
                "verified email on their next sign-in.",
                "The issuer changed: %(count)d sign-in links were dropped; people link again by their "
                "verified email on their next sign-in.", dropped) % {"count": dropped}, messages.WARNING)

    @admin.display(description=_("redirect URI to register at the upstream"))
    def redirect_uri(self, upstream: Upstream) -> str:
        if not upstream.pk:
            return _("shown once the upstream is saved")
        return format_html("<code>{}</code>", f"{settings.HUB_ISSUER}/complete/{upstream.pk}/")
