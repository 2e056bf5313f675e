"""What an admin types into an app to connect it to the hub — for DSM, its SSO Client form.

See ../shared/reference/dsm-sso-client.md: Control Panel → Domain/LDAP → SSO Client → OpenID Connect
SSO Settings asks for exactly these fields, in this order.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _
from oauth2_provider.models import Application

from .claims import issuer

DSM_SCOPE = "openid profile email"
DSM_USERNAME_CLAIM = "username"  # released with `openid` alone, in the ID token and userinfo


@dataclass(frozen=True)
class SettingValue:
    id: str  # stable, for the page's element ids and tests
    label: str  # the field's name in DSM's form (in the console's language)
    value: str  # what to type ("" when `note` says where to find it)
    note: str = ""

    @property
    def copyable(self) -> bool:
        return bool(self.value)


def well_known_url() -> str:
    """`<issuer>/.well-known/openid-configuration`, the URL the discovery document lives at."""
    return f"{issuer()}/.well-known/openid-configuration"


def dsm_sso_settings(application: Application) -> list[SettingValue]:
    """DSM's SSO Client values for a NAS-bound app. The secret is never here: it is shown once,
    at creation or on rotation."""
    uris = application.redirect_uris.split()
    return [
        SettingValue("profile", _("Profile"), "OIDC"),
        SettingValue("account-type", _("Account type"), "Domain/LDAP/local",
                     _("DSM 7.2 or later; needed for local accounts")),
        SettingValue("name", _("Name"), application.name or application.client_id, _("the sign-in button's label")),
        SettingValue("well-known-url", _("Well-known URL"), well_known_url()),
        SettingValue("application-id", _("Application ID"), application.client_id),
        SettingValue("application-secret", _("Application secret"), "",
                     _("shown once at creation — rotate to get a new one")),
        SettingValue("redirect-url", _("Redirect URL"), uris[0] if uris else "",
                     "" if uris else _("register a redirect URI first")),
        SettingValue("scope", _("Authorization scope"), DSM_SCOPE),
        SettingValue("username-claim", _("Username claim"), DSM_USERNAME_CLAIM),
    ]
