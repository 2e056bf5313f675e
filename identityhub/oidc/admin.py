"""The console's provider pages.

- App: one page per client — DOT's Application (URL kept: /admin/oauth2_provider/application/…)
  with the hub's ClientProfile, only the options the hub serves, saved through the services;
  the secret shown once (creation, Rotate secret); Connect DSM; Claims preview. Scoped by household.
- Signing keys and consents: operators only.
"""

from __future__ import annotations

import json

import oauth2_provider.admin  # noqa: F401  (DOT's admin registers first; replaced below)
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from oauth2_provider.models import Application

from accounts.admin_scoping import (
    HouseholdScopedAdmin,
    OperatorOnlyAdmin,
    register_scope,
)
from accounts.roles import is_operator

from . import keys
from .admin_forms import ApplicationForm, ClaimsPreviewForm, ConsoleScope, profile_of
from .claims import PER_SIGN_IN_CLAIMS, preview_claims
from .connect import dsm_sso_settings
from .models import ClientProfile, Consent, SigningKey
from .services import ClientError, change_client, create_client, rotate_client_secret

register_scope(Application, lambda ids: Q(profile__households__in=ids) | Q(profile__nas__household_id__in=ids),
               distinct=True)
register_scope(ClientProfile, lambda ids: Q(households__in=ids) | Q(nas__household_id__in=ids), distinct=True)

_SECRET_ATTR = "_hub_secret_shown_once"  # on the request only: never the session, messages or logs

if admin.site.is_registered(Application):
    admin.site.unregister(Application)
if admin.site.is_registered(ClientProfile):
    admin.site.unregister(ClientProfile)


@admin.register(Application)
class ApplicationAdmin(HouseholdScopedAdmin):
    form = ApplicationForm
    change_form_template = "admin/oidc/application/change_form.html"
    view_on_site = False  # DOT's get_absolute_url names a management view the hub does not mount
    list_display = ("name", "client_id", "kind", "nas", "used_by", "managed")
    list_select_related = ("profile__nas",)
    search_fields = ("name", "client_id")
    fieldsets = [
        (None, {"fields": ["name", "client_id", "client_type"]}),
        (gettext_lazy("Redirects"), {"fields": ["redirect_uris", "post_logout_redirect_uris",
                                                "backchannel_logout_uri"]}),
        (gettext_lazy("Who may use it"), {"fields": ["nas", "households", "skip_authorization"]}),
    ]

    # --- the profile is part of the app ---------------------------------------------------------
    def get_queryset(self, request):
        return super().get_queryset(request).select_related("profile__nas").prefetch_related("profile__households")

    def is_config_managed(self, obj) -> bool:
        profile = profile_of(obj)
        return bool(profile and profile.managed)

    def get_readonly_fields(self, request, obj=None):
        return ("client_id",) if obj is not None else ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"console_scope": ConsoleScope.of(request.user)})

    def has_delete_permission(self, request, obj=None) -> bool:
        """Not an app another household also uses: deleting it would take it from them too."""
        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or is_operator(request.user) or not _other_households(obj, ConsoleScope.of(request.user))

    # --- saving goes through the services (the config's rules) --------------------------------------
    def save_model(self, request, obj, form, change) -> None:
        if change:
            application, secret = change_client(obj, **form.client_fields())
        else:
            application, secret = create_client(form.cleaned_data["client_id"], **form.client_fields())
        obj.pk = application.pk
        obj.refresh_from_db()
        obj._state.adding = False
        setattr(request, _SECRET_ATTR, secret)

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, _SECRET_ATTR, None)
        if secret:
            return self._secret_page(request, obj, secret, created=True)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        secret = getattr(request, _SECRET_ATTR, None)  # a public app made confidential
        if secret:
            return self._secret_page(request, obj, secret, created=False)
        return super().response_change(request, obj)

    # --- the page's extras ------------------------------------------------------------------------------
    def get_object_tools(self, request, obj) -> list[dict]:
        if obj.client_type != Application.CLIENT_CONFIDENTIAL or not self.has_change_permission(request, obj):
            return []
        return [{"id": "rotate-secret", "label": _("Rotate secret"), "url": self._url("rotate_secret", obj)}]

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": _("Apps"), **(extra_context or {})})

    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, {"title": _("Add an app"), **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        extra_context = {"title": _("App") if self.has_change_permission(request, obj) else _("App (read-only)"),
                         **(extra_context or {})}
        if obj is not None:
            extra_context["claims_url"] = self._url("claims", obj)
            profile = profile_of(obj)
            if profile is not None and profile.nas_id:
                extra_context["connect_dsm"] = dsm_sso_settings(obj)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/rotate-secret/", wrap(self.rotate_secret_view), name=f"{prefix}_rotate_secret"),
            path("<path:object_id>/claims/", wrap(self.claims_view), name=f"{prefix}_claims"),
            *super().get_urls(),
        ]

    def _url(self, view: str, obj) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_{view}", args=[obj.pk])

    def _change_url(self, obj) -> str:
        return self._url("change", obj)

    def _scoped_object(self, request, object_id) -> Application:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:  # missing, or another household's: the same 404
            raise Http404("No app with this id.")
        return obj

    def _context(self, request, obj, title: str, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts, "app_label": self.opts.app_label, "original": obj, "title": title,
            "change_url": self._change_url(obj),
            "has_view_permission": self.has_view_permission(request, obj),
            **extra,
        }

    def rotate_secret_view(self, request, object_id):
        """POST (from the object tool) asks to confirm; POST with `confirm` rotates and shows the new
        secret once."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self._scoped_object(request, object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        if obj.client_type != Application.CLIENT_CONFIDENTIAL:
            messages.error(request, _("A public app has no secret."))
            return HttpResponseRedirect(self._change_url(obj))
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(request, "admin/oidc/application/rotate_secret_confirm.html",
                                    self._context(request, obj, _("Rotate the secret of %(app)s?") % {"app": obj.name},
                                                  rotate_url=self._url("rotate_secret", obj)))
        try:
            secret = rotate_client_secret(obj)
        except ClientError as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(self._change_url(obj))
        self.log_change(request, obj, "Rotated the client secret.")
        return self._secret_page(request, obj, secret, created=False)

    def _secret_page(self, request, obj, secret: str, *, created: bool):
        profile = profile_of(obj)
        context = self._context(
            request, obj, _("The secret of %(app)s") % {"app": obj.name}, secret=secret, created=created,
            connect_dsm=dsm_sso_settings(obj) if profile is not None and profile.nas_id else None,
        )
        response = TemplateResponse(request, "admin/oidc/application/secret_once.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def claims_view(self, request, object_id):
        obj = self._scoped_object(request, object_id)
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        form = ClaimsPreviewForm(request.GET if "person" in request.GET else None, scope=ConsoleScope.of(request.user))
        preview = None
        if form.is_bound and form.is_valid():
            preview = preview_claims(form.cleaned_data["person"], obj, form.cleaned_data["scopes"])
        context = self._context(request, obj, _("Claims preview: %(app)s") % {"app": obj.name}, form=form,
                                preview=preview, person=form.cleaned_data["person"] if preview else None,
                                per_sign_in=PER_SIGN_IN_CLAIMS)
        if preview is not None and preview.allowed:
            context["id_token_json"] = _json(preview.id_token)
            context["userinfo_json"] = _json(preview.userinfo)
        return TemplateResponse(request, "admin/oidc/application/claims_preview.html", context)

    # --- columns and read-only values -------------------------------------------------------------
    @admin.display(description=gettext_lazy("kind"), ordering="client_type")
    def kind(self, obj) -> str:
        return _("confidential") if obj.client_type == Application.CLIENT_CONFIDENTIAL else _("public (PKCE)")

    @admin.display(description=gettext_lazy("bound NAS"))
    def nas(self, obj) -> str:
        profile = profile_of(obj)
        return str(profile.nas) if profile and profile.nas else "—"

    @admin.display(description=gettext_lazy("households who may use it"))
    def households(self, obj) -> str:
        return self.used_by(obj)

    @admin.display(description=gettext_lazy("Back-channel logout URI"))
    def backchannel_logout_uri(self, obj) -> str:
        profile = profile_of(obj)
        return (profile.backchannel_logout_uri if profile else "") or "—"

    @admin.display(description=gettext_lazy("who may use it"))
    def used_by(self, obj) -> str:
        profile = profile_of(obj)
        if profile is None:
            return _("nobody (no profile)")
        listed = [h.name or h.pk for h in profile.households.all()]
        if listed:
            return ", ".join(sorted(listed))
        return _("the household of %(nas)s") % {"nas": profile.nas} if profile.nas else _("nobody")

    @admin.display(description=gettext_lazy("config"), boolean=True)
    def managed(self, obj) -> bool:
        return self.is_config_managed(obj)


def _json(claims: dict) -> str:
    """As `hub claims` prints them."""
    return json.dumps(claims, sort_keys=True, indent=2, ensure_ascii=False)


def _other_households(application: Application, scope: ConsoleScope) -> bool:
    """Does the app serve a household the admin does not administer?"""
    profile = profile_of(application)
    if profile is None:
        return False
    ids = {h.pk for h in profile.households.all()}
    if not ids and profile.nas is not None:
        ids = {profile.nas.household_id}
    return any(not scope.sees_household(i) for i in ids)


@admin.register(SigningKey)
class SigningKeyAdmin(OperatorOnlyAdmin):
    """Read-only; **Rotate** makes a new active key. Keys still published (the active one, and
    retired ones within the grace period) cannot be deleted — not even by a bulk action."""

    change_list_template = "admin/oidc/signingkey/change_list.html"
    list_display = ("kid", "state", "created", "retired_at")
    fields = ("kid", "state", "created", "retired_at")
    readonly_fields = fields

    @admin.display(description=gettext_lazy("state"))
    def state(self, key: SigningKey) -> str:
        if key.active:
            return _("active (signs ID tokens)")
        return _("retiring (still published)") if _published(key) else _("retired (no longer published)")

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and (obj is None or not _published(obj))

    def delete_queryset(self, request, queryset) -> None:
        super().delete_queryset(request, queryset.filter(active=False).exclude(pk__in=keys.retiring_keys()))

    def get_object_tools(self, request, obj) -> list[dict]:
        if not obj.active or not is_operator(request.user):
            return []
        return [{"id": "rotate-key", "label": _("Rotate"), "url": reverse("admin:oidc_signingkey_rotate")}]

    def changelist_view(self, request, extra_context=None):
        extra_context = {"rotate_url": reverse("admin:oidc_signingkey_rotate"), **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        return [path("rotate/", self.admin_site.admin_view(self.rotate_view), name="oidc_signingkey_rotate"),
                *super().get_urls()]

    def rotate_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not is_operator(request.user):
            raise PermissionDenied
        key = keys.rotate()
        self.log_addition(request, key, "Rotated: this key signs from now on.")
        messages.success(request, _("%(kid)s is the active key; the previous one stays published for %(hours)s h.")
                         % {"kid": key.kid, "hours": settings.HUB_KEY_RETIREMENT_SECONDS // 3600})
        return HttpResponseRedirect(reverse("admin:oidc_signingkey_changelist"))


def _published(key: SigningKey) -> bool:
    return key.active or keys.retiring_keys().filter(pk=key.pk).exists()


@admin.register(Consent)
class ConsentAdmin(OperatorOnlyAdmin):
    """Who allowed which app (operators only). Deleting one makes the hub ask that person again."""

    list_display = ("user", "application", "scopes", "granted")
    list_select_related = ("user", "application")
    search_fields = ("user__email", "application__client_id")
    fields = ("user", "application", "scopes", "granted")
    readonly_fields = fields

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
