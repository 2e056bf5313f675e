"""The console's forms for apps: only the options the hub serves, validated like the config file."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from oauth2_provider.models import Application

from accounts.models import Household, User
from accounts.roles import administered_household_ids, is_operator
from synology.models import NAS

from .claims import all_scopes
from .models import ClientProfile
from .services import check_backchannel_logout_uri, check_client_households, check_client_id, check_redirect_uri


@dataclass(frozen=True)
class ConsoleScope:
    """What the signed-in admin may pick: `household_ids` None means every household (operator)."""

    household_ids: frozenset[str] | None

    @classmethod
    def of(cls, user) -> ConsoleScope:
        return cls(None if is_operator(user) else administered_household_ids(user))

    def households(self) -> QuerySet[Household]:
        queryset = Household.objects.order_by("name")
        return queryset if self.household_ids is None else queryset.filter(pk__in=self.household_ids)

    def nases(self) -> QuerySet[NAS]:
        queryset = NAS.objects.defer("service_password").order_by("id")
        return queryset if self.household_ids is None else queryset.filter(household_id__in=self.household_ids)

    def people(self) -> QuerySet[User]:
        queryset = User.objects.order_by("email")
        if self.household_ids is None:
            return queryset
        return queryset.filter(memberships__household_id__in=self.household_ids).distinct()

    def sees_household(self, household_id: str) -> bool:
        return self.household_ids is None or household_id in self.household_ids


def profile_of(application: Application | None) -> ClientProfile | None:
    """The app's profile (the admin's queryset loads it with its NAS and households), or None."""
    if application is None or application.pk is None:
        return None
    try:
        return application.profile
    except ClientProfile.DoesNotExist:
        return None


def split_uris(value: str) -> list[str]:
    return list(dict.fromkeys(value.split()))


class ApplicationForm(forms.ModelForm):
    """DOT's Application and the hub's ClientProfile on one form. Saved by the admin through
    `services.create_client` / `change_client` (never `form.save()`), so the config's rules apply."""

    console_scope: ConsoleScope = ConsoleScope(frozenset())  # set per request by the admin's get_form

    client_id = forms.CharField(
        label=gettext_lazy("Client ID"), max_length=100,
        help_text=gettext_lazy("What the app is configured with (DSM: “Application ID”), e.g. ds923-dsm. "
                               "It cannot be changed later."),
    )
    client_type = forms.ChoiceField(
        label=gettext_lazy("Kind"), widget=forms.RadioSelect(attrs={"class": "radiolist"}),
        initial=Application.CLIENT_CONFIDENTIAL,
        choices=[
            (Application.CLIENT_CONFIDENTIAL, gettext_lazy("Confidential — has a secret (DSM, server-side apps)")),
            (Application.CLIENT_PUBLIC, gettext_lazy("Public — no secret, PKCE required (phone and single-page apps)")),
        ],
        help_text=gettext_lazy("A confidential app gets a generated secret, shown once."),
    )
    redirect_uris = forms.CharField(
        label=gettext_lazy("Redirect URIs"), widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("One per line, matched exactly: https, or http on loopback only. For DSM, its "
                               "address as people open it, e.g. https://nas.example.com:5001 (add the same with "
                               "a trailing slash as a second line)."),
    )
    post_logout_redirect_uris = forms.CharField(
        label=gettext_lazy("Post-logout redirect URIs"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("One per line; where the app may send people after signing out (optional)."),
    )
    backchannel_logout_uri = forms.CharField(
        label=gettext_lazy("Back-channel logout URI"), required=False, max_length=500,
        help_text=gettext_lazy("Optional: where the hub tells the app that a person signed out (OpenID Connect "
                               "Back-Channel Logout); https, or http on loopback only."),
    )
    nas = forms.ModelChoiceField(
        label=gettext_lazy("Bound NAS"), queryset=NAS.objects.none(), required=False,
        help_text=gettext_lazy("For a DSM app: the username claim is the person's account on this NAS."),
    )
    households = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Households who may use it"), queryset=Household.objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Leave empty to use the bound NAS's household; required without a NAS."),
    )

    class Meta:
        model = Application
        fields = ["name", "client_id", "client_type", "redirect_uris", "post_logout_redirect_uris",
                  "skip_authorization"]
        labels = {"name": gettext_lazy("Name"), "skip_authorization": gettext_lazy("Skip consent")}
        help_texts = {
            "name": gettext_lazy("Shown to people on the consent page (and as DSM's sign-in button)."),
            "skip_authorization": gettext_lazy("For apps the household trusts (DSM): people are not asked to "
                                               "allow them."),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        scope = self.console_scope
        self.profile = profile_of(self.instance)
        if self.instance.pk:
            self.fields.pop("client_id", None)  # read-only after creation (the admin shows it)
        self.fields["nas"].queryset = scope.nases()
        self.fields["households"].queryset = scope.households()
        self.hidden_households: list[Household] = []
        if self.instance.pk:
            self.initial["redirect_uris"] = "\n".join(self.instance.redirect_uris.split())
            self.initial["post_logout_redirect_uris"] = "\n".join(self.instance.post_logout_redirect_uris.split())
        if self.profile is not None:
            self.initial["backchannel_logout_uri"] = self.profile.backchannel_logout_uri
        if self.profile is not None:
            current = list(self.profile.households.all())
            self.initial["households"] = [h.pk for h in current if scope.sees_household(h.pk)]
            self.hidden_households = [h for h in current if not scope.sees_household(h.pk)]
            nas = self.profile.nas
            self.initial["nas"] = nas.pk if nas else None
            if nas is not None and not scope.sees_household(nas.household_id):
                # Another household's NAS: shown, kept, not changeable here.
                self.fields["nas"].queryset = NAS.objects.defer("service_password").filter(pk=nas.pk)
                self.fields["nas"].disabled = True
                self.fields["nas"].help_text = _("Another household's NAS: only its admins can change this.")
        if self.hidden_households:
            count = len(self.hidden_households)
            self.fields["households"].help_text = str(self.fields["households"].help_text) + " " + ngettext(
                "Also used by %(count)s household you do not administer; kept as they are.",
                "Also used by %(count)s households you do not administer; kept as they are.", count,
            ) % {"count": count}

    def clean_client_id(self) -> str:
        client_id = self.cleaned_data["client_id"].strip()
        problem = check_client_id(client_id)
        if problem:
            raise forms.ValidationError(problem)
        return client_id

    def _clean_uris(self, name: str) -> str:
        uris = split_uris(self.cleaned_data.get(name) or "")
        problems = [p for p in (check_redirect_uri(uri) for uri in uris) if p]
        if problems:
            raise forms.ValidationError(problems)
        return " ".join(uris)

    def clean_redirect_uris(self) -> str:
        value = self._clean_uris("redirect_uris")
        if not value:
            raise forms.ValidationError(_("at least one redirect URI is required"))
        return value

    def clean_post_logout_redirect_uris(self) -> str:
        return self._clean_uris("post_logout_redirect_uris")

    def clean_backchannel_logout_uri(self) -> str:
        uri = (self.cleaned_data.get("backchannel_logout_uri") or "").strip()
        problem = check_backchannel_logout_uri(uri) if uri else None
        if problem:
            raise forms.ValidationError(problem)
        return uri

    def clean(self):
        cleaned = super().clean()
        if "households" in cleaned:
            problem = check_client_households(cleaned.get("nas"), self.all_households())
            if problem:
                self.add_error("households", problem)
        # What DOT's own model validation looks at: the hub serves the code flow, RS256 only.
        self.instance.authorization_grant_type = Application.GRANT_AUTHORIZATION_CODE
        self.instance.algorithm = Application.RS256_ALGORITHM
        return cleaned

    def all_households(self) -> list[Household]:
        """The households picked here plus those the admin cannot see (never dropped silently)."""
        return [*self.cleaned_data.get("households", []), *self.hidden_households]

    def client_fields(self) -> dict:
        """The keyword arguments of services.create_client / change_client."""
        cleaned = self.cleaned_data
        return {
            "name": cleaned["name"],
            "redirect_uris": cleaned["redirect_uris"].split(),
            "post_logout_redirect_uris": cleaned["post_logout_redirect_uris"].split(),
            "public": cleaned["client_type"] == Application.CLIENT_PUBLIC,
            "nas": cleaned.get("nas"),
            "households": self.all_households(),
            "skip_consent": bool(cleaned.get("skip_authorization")),
            "backchannel_logout_uri": cleaned.get("backchannel_logout_uri", ""),
        }


class ClaimsPreviewForm(forms.Form):
    person = forms.ModelChoiceField(queryset=User.objects.none(), label=gettext_lazy("Person"))
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("Scopes the app asks for"), widget=forms.CheckboxSelectMultiple, required=False,
        help_text=gettext_lazy("The username claim is released with openid alone."),
    )

    def __init__(self, *args, scope: ConsoleScope, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["person"].queryset = scope.people()
        self.fields["person"].label_from_instance = lambda u: f"{u.name} <{u.email}>" if u.name else u.email
        self.fields["scopes"].choices = [(s, s) for s in all_scopes()]
        self.fields["scopes"].initial = all_scopes()

    def clean_scopes(self) -> list[str]:
        scopes = self.cleaned_data["scopes"]
        return scopes if "openid" in scopes else ["openid", *scopes]
