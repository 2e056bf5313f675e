from django.conf import settings
from django.contrib import admin
from django.utils.html import format_html, format_html_join

from .models import ClientProfile, Consent, SigningKey


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
