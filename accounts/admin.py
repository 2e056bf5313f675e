from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.forms import ModelForm, PasswordInput
from social_django.models import UserSocialAuth

from .models import Household, Membership, Upstream, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class UpstreamLinkInline(admin.TabularInline):
    model = UserSocialAuth
    fields = ("provider", "uid", "created", "modified")
    readonly_fields = fields
    extra = 0
    can_delete = True
    verbose_name = "upstream link"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "name", "is_active", "is_staff", "managed", "last_login")
    list_filter = ("is_active", "is_staff", "managed", "households")
    search_fields = ("email", "name")
    readonly_fields = ("public_id", "last_login", "date_joined", "managed")
    fieldsets = (
        (None, {"fields": ("email", "name", "public_id", "is_active", "managed")}),
        ("Administration", {"fields": ("is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"fields": ("email", "name")}),)
    inlines = [UpstreamLinkInline]
    filter_horizontal = ()


@admin.register(Household)
class HouseholdAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "managed")
    inlines = [MembershipInline]
    readonly_fields = ("managed",)


class UpstreamForm(ModelForm):
    class Meta:
        model = Upstream
        fields = ["id", "type", "name", "issuer", "client_id", "client_secret", "allowed_domains", "enabled",
                  "position"]
        widgets = {"client_secret": PasswordInput(render_value=False)}

    def clean_client_secret(self):
        # Write-only: an empty field keeps the stored secret.
        return self.cleaned_data["client_secret"] or (self.instance.client_secret if self.instance.pk else "")


@admin.register(Upstream)
class UpstreamAdmin(admin.ModelAdmin):
    form = UpstreamForm
    list_display = ("id", "type", "name", "issuer", "enabled", "managed")
    readonly_fields = ("managed",)
