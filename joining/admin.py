"""The console's joining pages: invitations (made here, the link shown once) and access requests
(approved or declined here). Scoped by household like every console page; every write goes
through `joining.services`.

Neither page writes inside Django's admin transaction: making an invitation with a new NAS
account and approving a request with one create the account on the NAS over HTTP, which must
never hold the database's write lock (`services` keeps the HTTP call before its transaction).
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_protect

from accounts.admin_scoping import HouseholdScopedAdmin, register_scope, scope_queryset
from accounts.models import Household, Membership, User
from synology.models import NAS, DSMAccount
from synology.provisioning import check_new_account_name, linkable_accounts, suggest_account_name

from . import services
from .models import AccessRequest, Invitation

register_scope(Invitation, lambda ids: Q(household_id__in=ids))
register_scope(AccessRequest, lambda ids: Q(household_id__in=ids))

MAX_LIFETIME_DAYS = services.MAX_INVITATION_LIFETIME.days
NEW_NAME_MAX = 64  # DSM's limit for an account name


def _when(value) -> str:
    return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT") if value else "—"


def _person_label(user: User | None) -> str:
    if user is None:
        return "—"
    return f"{user.name} <{user.email}>" if user.name else user.email


# --- invitations ---------------------------------------------------------------------------------
class InvitationStateFilter(admin.SimpleListFilter):
    title = gettext_lazy("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return Invitation.State.choices

    def queryset(self, request, queryset):
        now = timezone.now()
        waiting = Q(used_at=None, revoked_at=None)
        filters = {
            Invitation.State.PENDING: waiting & Q(expires_at__gt=now),
            Invitation.State.USED: ~Q(used_at=None),
            Invitation.State.EXPIRED: waiting & Q(expires_at__lte=now),
            Invitation.State.REVOKED: Q(used_at=None) & ~Q(revoked_at=None),
        }
        chosen = filters.get(self.value())
        return queryset.filter(chosen) if chosen is not None else queryset


class InvitationForm(forms.Form):
    """Who is invited where, and the NAS account they get. Saved by `services.invite`."""

    email = forms.EmailField(label=gettext_lazy("Email"), max_length=254)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=150, required=False)
    household = forms.ModelChoiceField(queryset=Household.objects.none(), label=gettext_lazy("Household"))
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER,
                             label=gettext_lazy("Role"))
    nas = forms.ModelChoiceField(
        queryset=NAS.objects.none(), required=False, label=gettext_lazy("NAS"),
        empty_label=gettext_lazy("No NAS account"),
        help_text=gettext_lazy("Optional: the NAS they get an account on. It must belong to the household."))
    account = forms.ChoiceField(
        required=False, label=gettext_lazy("Existing account to link"),
        help_text=gettext_lazy("Accounts nobody has yet, as of the NAS's last sync."))
    create_account = forms.CharField(
        required=False, max_length=NEW_NAME_MAX, label=gettext_lazy("Or a new account to create"),
        help_text=gettext_lazy("The hub creates it on the NAS now, with a random password nobody sees. "
                               "The person signs in through the hub."))
    lifetime_days = forms.IntegerField(
        label=gettext_lazy("Valid for (days)"), initial=services.DEFAULT_INVITATION_LIFETIME.days,
        min_value=1, max_value=MAX_LIFETIME_DAYS)

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["household"].queryset = scope_queryset(Household.objects.order_by("name"), user)
        nas_queryset = scope_queryset(NAS.objects.defer("service_password").order_by("name"), user)
        self.fields["nas"].queryset = nas_queryset
        nases = list(nas_queryset)
        groups: list = [("", "—")]
        for nas in nases:
            names = list(linkable_accounts(nas).values_list("name", flat=True))
            if names:
                groups.append((str(nas), [(f"{nas.pk}:{name}", name) for name in names]))
        self.fields["account"].choices = groups
        self.nases = {nas.pk: nas for nas in nases}

    def clean_create_account(self) -> str:
        return self.cleaned_data.get("create_account", "").strip()

    def clean(self):
        cleaned = super().clean()
        nas, household = cleaned.get("nas"), cleaned.get("household")
        account, create = cleaned.get("account") or "", cleaned.get("create_account") or ""
        if "nas" in self.errors:
            return cleaned
        if account and create:
            self.add_error("create_account", _("Choose an existing account or a new name, not both."))
            return cleaned
        if account:
            nas_id, _sep, name = account.partition(":")
            if nas is None:
                nas = cleaned["nas"] = self.nases[nas_id]
            elif nas.pk != nas_id:
                self.add_error("account", _("This account is on another NAS than the one chosen."))
                return cleaned
            cleaned["account_name"] = name
        if create and nas is None:
            self.add_error("nas", _("Choose the NAS to create the account on."))
            return cleaned
        if nas is not None and not (account or create):
            self.add_error("account", _("Choose an account on %(nas)s to link, or type a name for a new one.")
                           % {"nas": nas})
            return cleaned
        if nas is not None and household is not None and nas.household_id != household.pk:
            self.add_error("nas", _("%(nas)s does not belong to %(household)s.") % {"nas": nas,
                                                                                   "household": household})
            return cleaned
        if create and nas is not None:
            problem = check_new_account_name(nas, create, email=cleaned.get("email") or "")
            if problem:
                self.add_error("create_account", problem)
        return cleaned

    def account_choice(self) -> services.AccountChoice | None:
        nas = self.cleaned_data.get("nas")
        if nas is None:
            return None
        return services.AccountChoice(nas, link=self.cleaned_data.get("account_name", ""),
                                      create=self.cleaned_data.get("create_account", ""))


@admin.register(Invitation)
class InvitationAdmin(HouseholdScopedAdmin):
    """Made with "Add invitation" (the link is shown once, then never again), read-only afterwards,
    revoked with an object tool while it waits. Operators may delete; household admins revoke."""

    household_admin_may_delete = False
    change_form_template = "admin/joining/invitation/change_form.html"
    list_display = ("email", "household", "role", "nas_account", "state_label", "expires_at", "invited_by")
    list_filter = (InvitationStateFilter, "household")
    list_select_related = ("person", "household", "nas", "created_by")
    search_fields = ("person__email", "person__name")
    invite_fieldsets = [
        (None, {"fields": ["email", "name", "household", "role"]}),
        (gettext_lazy("NAS account"), {"fields": ["nas", "account", "create_account"],
                                       "description": gettext_lazy(
                                           "Link an account the NAS has already, or let the hub create one.")}),
        (gettext_lazy("Link"), {"fields": ["lifetime_days"]}),
    ]
    fieldsets = [
        (None, {"fields": ["person_label", "household", "role", "state_label"]}),
        (gettext_lazy("NAS account"), {"fields": ["nas", "account_name"]}),
        (gettext_lazy("Dates"), {"fields": ["invited_by", "created_at", "expires_at", "used_at", "used_with",
                                            "revoked_at"]}),
    ]
    readonly_fields = ("person_label", "household", "role", "state_label", "nas", "account_name", "invited_by",
                       "created_at", "expires_at", "used_at", "used_with", "revoked_at")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # an invitation is never edited: revoke it and make another

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("person", "household", "nas", "created_by")

    # --- columns ------------------------------------------------------------------------------------------
    @admin.display(description=gettext_lazy("email"), ordering="person__email")
    def email(self, invitation: Invitation) -> str:
        return invitation.person.email

    @admin.display(description=gettext_lazy("person"))
    def person_label(self, invitation: Invitation) -> str:
        return _person_label(invitation.person)

    @admin.display(description=gettext_lazy("NAS account"))
    def nas_account(self, invitation: Invitation) -> str:
        if invitation.nas_id is None:
            return "—"
        return f"{invitation.nas_id}: {invitation.account_name}" if invitation.account_name else invitation.nas_id

    @admin.display(description=gettext_lazy("state"))
    def state_label(self, invitation: Invitation) -> str:
        css = {Invitation.State.PENDING: "hub-waiting", Invitation.State.USED: "hub-ok"}.get(invitation.state,
                                                                                           "hub-quiet")
        return format_html('<span class="{}">{}</span>', css, invitation.get_state_display())

    @admin.display(description=gettext_lazy("invited by"), ordering="created_by__email")
    def invited_by(self, invitation: Invitation) -> str:
        return _person_label(invitation.created_by) if invitation.created_by_id else _("the hub command")

    # --- pages ----------------------------------------------------------------------------------------------
    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": _("Invitations"), **(extra_context or {})})

    def get_object_tools(self, request, obj) -> list[dict]:
        if obj.state != Invitation.State.PENDING or not self.has_view_permission(request, obj):
            return []
        return [{"id": "revoke-invitation", "label": _("Revoke"),
                 "url": reverse("admin:joining_invitation_revoke", args=[obj.pk])}]

    def get_urls(self):
        own = [path("<path:object_id>/revoke/", self.admin_site.admin_view(self.revoke_view),
                    name="joining_invitation_revoke")]
        return own + super().get_urls()

    def revoke_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        invitation = self.get_object(request, unquote(object_id))
        if invitation is None or not self.has_view_permission(request, invitation):
            raise Http404("No invitation with this id.")
        if services.revoke_invitation(invitation, by=request.user):
            self.log_change(request, invitation, "Revoked.")
            messages.success(request, _("The invitation of %(email)s is revoked: its link no longer works.")
                             % {"email": invitation.person.email})
        else:
            messages.warning(request, _("This invitation was no longer waiting (%(state)s): nothing to revoke.")
                             % {"state": invitation.get_state_display()})
        return HttpResponseRedirect(reverse("admin:joining_invitation_change", args=[invitation.pk]))

    # Django's add view saves inside a transaction; `services.invite` may create a NAS account over
    # HTTP first, so the invitation form has its own view, rendered with the admin's change form.
    @method_decorator(csrf_protect)
    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = InvitationForm(request.POST, user=request.user)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    invitation, url = services.invite(
                        data["household"], data["email"], name=data["name"], role=data["role"],
                        account=form.account_choice(), lifetime=timedelta(days=data["lifetime_days"]),
                        by=request.user)
                except services.JoiningError as error:
                    form.add_error(None, str(error))
                else:
                    self.log_addition(request, invitation, "Invited.")
                    return self._link_once_page(request, invitation, url)
        else:
            form = InvitationForm(initial=self.get_changeform_initial_data(request), user=request.user)
        admin_form = helpers.AdminForm(form, self.invite_fieldsets, {}, (), model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Invite someone"), "subtitle": None, "adminform": admin_form, "object_id": None,
            "original": None, "is_popup": False, "to_field": None, "media": self.media + admin_form.media,
            "inline_admin_formsets": [], "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            "show_save_and_add_another": False, "show_save_and_continue": False,
            **(extra_context or {}),
        }
        return self.render_change_form(request, context, add=True, form_url=form_url)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        return {key: value for key, value in initial.items() if key in InvitationForm.base_fields}

    def _link_once_page(self, request, invitation: Invitation, url: str):
        """The link, in this response only: the hub keeps a digest of its token, never the link."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts, "app_label": self.opts.app_label, "original": invitation,
            "title": _("The invitation link"), "invitation_url": url,
            "change_url": reverse("admin:joining_invitation_change", args=[invitation.pk]),
            "add_url": reverse("admin:joining_invitation_add"),
            "expires": _when(invitation.expires_at),
            "role": Membership.Role(invitation.role).label,
            "has_view_permission": True,
        }
        response = TemplateResponse(request, "admin/joining/invitation/link_once.html", context)
        response["Cache-Control"] = "no-store"
        return response


# --- access requests -----------------------------------------------------------------------------
class RequestStateFilter(admin.SimpleListFilter):
    """Open requests unless another state (or every state) is chosen."""

    title = gettext_lazy("state")
    parameter_name = "state"
    EVERY = "all"

    def lookups(self, request, model_admin):
        return [*AccessRequest.State.choices, (self.EVERY, _("every state"))]

    def value(self):
        return super().value() or AccessRequest.State.OPEN

    def queryset(self, request, queryset):
        value = self.value()
        return queryset if value == self.EVERY else queryset.filter(state=value)

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {"selected": self.value() == str(lookup), "display": title,
                   "query_string": changelist.get_query_string({self.parameter_name: lookup})}


class DecisionForm(forms.Form):
    """The NAS account of an approval: keep the one they have, link an existing one, or create one."""

    KEEP, LINK, CREATE = "keep", "link", "create"

    choice = forms.ChoiceField(label=gettext_lazy("NAS account"), required=False,
                               widget=forms.RadioSelect(attrs={"class": "radiolist"}))
    account = forms.ChoiceField(label=gettext_lazy("Existing account"), required=False,
                                widget=forms.Select(attrs={"aria-label": gettext_lazy("Existing account")}))
    new_name = forms.CharField(label=gettext_lazy("New account name"), required=False, max_length=NEW_NAME_MAX,
                               widget=forms.TextInput(attrs={"aria-label": gettext_lazy("New account name"),
                                                             "autocomplete": "off", "spellcheck": "false"}),
                               help_text=gettext_lazy("The hub creates it on the NAS now, with a random password "
                                                      "nobody sees. The person signs in through the hub."))

    def __init__(self, *args, access_request: AccessRequest, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.access_request = access_request
        self.nas = access_request.nas
        self.current = None
        if self.nas is None:
            return
        person = access_request.user or User.objects.filter(email=access_request.email).first()
        if person is not None:
            self.current = DSMAccount.objects.filter(nas=self.nas, user=person, present=True, expired=False).first()
        self.linkable = list(linkable_accounts(self.nas).values_list("name", flat=True))
        choices = []
        if self.current is not None:
            choices.append((self.KEEP, _("Keep their account %(name)s") % {"name": self.current.name}))
        if self.linkable:
            choices.append((self.LINK, _("Link an existing account")))
        choices.append((self.CREATE, _("Create a new account")))
        self.fields["choice"].choices = choices
        self.fields["choice"].initial = self.KEEP if self.current is not None else self.CREATE
        self.fields["account"].choices = [("", "—"), *((name, name) for name in self.linkable)]
        self.fields["new_name"].initial = suggest_account_name(self.nas, access_request.email, access_request.name)

    def clean_new_name(self) -> str:
        return self.cleaned_data.get("new_name", "").strip()

    def clean(self):
        cleaned = super().clean()
        if self.nas is None:
            return cleaned
        choice = cleaned.get("choice")
        if not choice:
            self.add_error("choice", _("Choose what to do about their account on %(nas)s.") % {"nas": self.nas})
        elif choice == self.LINK and not cleaned.get("account"):
            self.add_error("account", _("Choose the account to link."))
        elif choice == self.CREATE:
            name = cleaned.get("new_name", "")
            problem = check_new_account_name(self.nas, name, email=self.access_request.email) if name else \
                _("Type a name for the new account.")
            if problem:
                self.add_error("new_name", problem)
        return cleaned

    def account_choice(self) -> services.AccountChoice | None:
        choice = self.cleaned_data.get("choice")
        if self.nas is None or choice == self.KEEP:
            return None
        if choice == self.LINK:
            return services.AccountChoice(self.nas, link=self.cleaned_data["account"])
        return services.AccountChoice(self.nas, create=self.cleaned_data["new_name"])


@admin.register(AccessRequest)
class AccessRequestAdmin(HouseholdScopedAdmin):
    """Read-only facts and a decision: Approve (with the NAS account for a NAS-bound app) or Decline.
    Requests come from refusal pages only: nothing is added by hand; only operators delete."""

    household_admin_may_delete = False
    change_form_template = "admin/joining/accessrequest/change_form.html"
    list_display = ("email", "name", "household", "app", "nas", "created_at", "state")
    list_filter = (RequestStateFilter, "household")
    list_select_related = ("household", "nas")
    search_fields = ("email", "name")
    fields = ("email", "name", "household", "client_id", "nas", "created_at", "state", "outcome")
    readonly_fields = fields

    def has_add_permission(self, request, *args) -> bool:
        return False  # requests come from refusal pages

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # decided with Approve / Decline, never edited

    def may_decide(self, request, obj: AccessRequest) -> bool:
        return obj.state == AccessRequest.State.OPEN and self.has_view_permission(request, obj)

    @admin.display(description=gettext_lazy("app"), ordering="client_id")
    def app(self, obj: AccessRequest) -> str:
        return obj.client_id or "—"

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": _("Access requests"), **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if obj is not None:
            extra_context["title"] = _("Access request")
            extra_context["facts"] = self._facts(request, obj)
            if self.may_decide(request, obj):
                initial = {key: request.GET[key][:NEW_NAME_MAX] for key in ("choice", "account", "new_name")
                           if key in request.GET}
                extra_context["decision_form"] = DecisionForm(initial=initial, access_request=obj)
                extra_context["decide_url"] = reverse("admin:joining_accessrequest_decide", args=[obj.pk])
        return super().change_view(request, object_id, form_url, extra_context)

    def _facts(self, request, obj: AccessRequest) -> list[tuple[str, str]]:
        who = format_html("{} &lt;{}&gt;", obj.name, obj.email) if obj.name else obj.email
        person = obj.user or User.objects.filter(email=obj.email).first()
        if person is not None and scope_queryset(User.objects.filter(pk=person.pk), request.user).exists():
            known = format_html('<a href="{}">{}</a>', reverse("admin:accounts_user_change", args=[person.pk]),
                                _("yes: open the person"))
        elif person is not None:
            known = _("yes, in another household")
        else:
            known = _("not yet: approving declares them")
        signed_in = (format_html("{} <code>{}</code>", obj.upstream_id, obj.subject) if obj.upstream_id
                     else (_("their hub account") if obj.user_id else "—"))
        facts = [(_("Who"), who), (_("Known to the hub"), known), (_("Signed in with"), signed_in),
                 (_("App"), self._app_label(obj)), (_("NAS"), str(obj.nas) if obj.nas_id else "—"),
                 (_("Household"), str(obj.household)), (_("Asked"), _when(obj.created_at)),
                 (_("State"), obj.get_state_display())]
        if obj.decided_at:
            facts.append((_("Decided"), _("%(when)s by %(who)s") % {
                "when": _when(obj.decided_at),
                "who": _person_label(obj.decided_by) if obj.decided_by_id else _("the hub command")}))
        if obj.outcome:
            label = _("Last attempt") if obj.state == AccessRequest.State.OPEN else _("Outcome")
            facts.append((label, obj.outcome))
        return facts

    @staticmethod
    def _app_label(obj: AccessRequest) -> str:
        if not obj.client_id:
            return "—"
        from oauth2_provider.models import Application

        name = Application.objects.filter(client_id=obj.client_id).values_list("name", flat=True).first()
        return format_html("{} (<code>{}</code>)", name, obj.client_id) if name else \
            format_html("<code>{}</code>", obj.client_id)

    def get_urls(self):
        own = [path("<path:object_id>/decide/", self.admin_site.admin_view(self.decide_view),
                    name="joining_accessrequest_decide")]
        return own + super().get_urls()

    def decide_view(self, request, object_id):
        """POST Approve or Decline. Not inside a transaction: creating a NAS account is HTTP."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404("No access request with this id.")
        change_url = reverse("admin:joining_accessrequest_change", args=[obj.pk])
        if obj.state != AccessRequest.State.OPEN:
            messages.error(request, _("This request was already answered (%(state)s).")
                           % {"state": obj.get_state_display()})
            return HttpResponseRedirect(change_url)
        decision = request.POST.get("decision")
        if decision == "decline":
            try:
                done = services.decline_request(obj, by=request.user)
            except services.JoiningError as error:
                messages.error(request, str(error))
                return HttpResponseRedirect(change_url)
            self.log_change(request, obj, "Declined.")
            messages.success(request, done)
            return HttpResponseRedirect(reverse("admin:joining_accessrequest_changelist"))
        if decision != "approve":
            messages.error(request, _("Choose Approve or Decline."))
            return HttpResponseRedirect(change_url)
        form = DecisionForm(request.POST, access_request=obj)
        again = change_url + "?" + urlencode({k: request.POST.get(k, "")[:NEW_NAME_MAX]
                                             for k in ("choice", "account", "new_name")})
        if not form.is_valid():
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
            return HttpResponseRedirect(again)
        try:
            done = services.approve_request(obj, by=request.user, account=form.account_choice())
        except services.JoiningError as error:
            messages.error(request, _("Nothing was done: %(reason)s") % {"reason": error})
            return HttpResponseRedirect(again)
        self.log_change(request, obj, "Approved.")
        # Not the services' line alone: the admin capitalises a message's first letter (an email).
        messages.success(request, _("Approved: %(done)s") % {"done": done})
        return HttpResponseRedirect(reverse("admin:joining_accessrequest_changelist"))
