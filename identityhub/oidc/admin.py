from django.conf import settings
from django.contrib import admin
from django.utils.html import format_html, format_html_join
from oauth2_provider.admin import ApplicationAdmin
from oauth2_provider.forms import ApplicationForm
from oauth2_provider.models import Application

from .hashers import check_secret_strength
from .models import ClientProfile, Consent, SigningKey


class HubApplicationForm(ApplicationForm):
    """DOT's form, plus the hub's secret gate: the fast client-secret hash is only safe for strong
    secrets (hashers.py), and this form is the one place that did not check them."""

    def clean(self):
        cleaned = super().clean()
        secret = cleaned.get("client_secret") or ""
        confidential = cleaned.get("client_type") == Application.CLIENT_CONFIDENTIAL
        # Compared with the stored value (changed_data depends on the hidden initial of the field's
        # callable default): an untouched stored hash is not a new secret.
        if confidential and (not self.instance.pk or secret != self.instance.client_secret):
            problem = check_secret_strength(secret)
            if problem:
                self.add_error("client_secret", problem)
        elif confidential and self.instance.pk and self.instance.client_type != Application.CLIENT_CONFIDENTIAL:
            self.add_error("client_secret", "a client made confidential needs a new secret")
        return cleaned


admin.site.unregister(Application)


@admin.register(Application)
class HubApplicationAdmin(ApplicationAdmin):
    form = HubApplicationForm


@admin.register(ClientProfile)
class ClientProfileAdmin(admin.ModelAdmin):
    list_display = ("application", "nas", "managed")
    filter_horizontal = ("households",)
    readonly_fields = ("managed", "dsm_settings")
    fields = ("application", "nas", "households", "extra_claims", "managed", "dsm_settings")

    @admin.display(description="DSM SSO Client settings (copy these into DSM)")
    def dsm_settings(self, profile: ClientProfile) -> str:
        """Exactly what DSM's Control Panel → Domain/LDAP → SSO Client asks for."""
        if not profile.pk:
            return "-"
        application = profile.application
        uris = application.redirect_uris.split()
        rows = [
            ("Profile", "OIDC"),
            ("Account type", "Domain/LDAP/local"),
            ("Name", application.name),
            ("Well-known URL", f"{settings.HUB_ISSUER}/.well-known/openid-configuration"),
            ("Application ID", application.client_id),
            ("Application secret", "the secret you declared (stored hashed; not shown)"),
            ("Redirect URL", uris[0] if uris else "-"),
            ("Authorization scope", "openid profile email"),
            ("Username claim", "username"),
        ]
        return format_html("<table>{}</table>", format_html_join(
            "", "<tr><th>{}</th><td><code>{}</code></td></tr>", rows))


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ("user", "application", "scopes", "granted")


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    list_display = ("kid", "active", "created", "retired_at")
    fields = ("kid", "active", "created", "retired_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False
