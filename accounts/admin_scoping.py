"""The household console's one rule: a household admin reaches only their own households' objects.

Every ModelAdmin of a household-owned model derives from `HouseholdScopedAdmin`; everything
hub-wide derives from `OperatorOnlyAdmin`. Each scoped model registers how it belongs to a
household (`register_scope`), and the same filter then applies to its list, change, delete and
history pages (another household's object is a 404, not a redirect), to its actions (they act
on the scoped queryset), to autocompletes (Django reads the target admin's `get_queryset`) and to
every foreign-key or many-to-many choice that points at a scoped model.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin
from django.db.models import Model, Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy

from .roles import administered_household_ids, is_operator, may_enter_console

ScopeFilter = Callable[[frozenset[str]], Q]
_scopes: dict[type[Model], tuple[ScopeFilter, bool]] = {}


def register_scope(model: type[Model], scope: ScopeFilter, *, distinct: bool = False) -> None:
    """Declare how `model`'s rows belong to households: `scope(household_ids)` is a Q filter."""
    _scopes[model] = (scope, distinct)


def scope_queryset(queryset: QuerySet, user) -> QuerySet:
    """Operators see everything; household admins their households' rows; anyone else nothing."""
    if is_operator(user):
        return queryset
    entry = _scopes.get(queryset.model)
    household_ids = administered_household_ids(user)
    if entry is None or not household_ids:
        return queryset.none()
    scope, distinct = entry
    queryset = queryset.filter(scope(household_ids))
    return queryset.distinct() if distinct else queryset


def in_scope(obj: Model, user) -> bool:
    if is_operator(user):
        return True
    return scope_queryset(type(obj)._default_manager.filter(pk=obj.pk), user).exists()


class ConfigManagedReadOnly:
    """Objects the config file manages (`managed=True`) are read-only in the console, with a note."""

    managed_note = gettext_lazy("The config file manages this object: change it there and run `hub apply`.")

    def get_object_tools(self, request, obj) -> list[dict]:
        """Buttons above the change form, each a POST: [{"id", "label", "url"}]."""
        return []

    def is_config_managed(self, obj) -> bool:
        return bool(obj is not None and getattr(obj, "managed", False))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        obj = self.get_object(request, object_id) if object_id else None
        if self.is_config_managed(obj):
            extra_context["config_managed_note"] = self.managed_note
        if obj is not None:
            extra_context["hub_object_tools"] = self.get_object_tools(request, obj)
        return super().change_view(request, object_id, form_url, extra_context)


class HouseholdScopedAdmin(ConfigManagedReadOnly, admin.ModelAdmin):
    """A model a household admin may manage for the households they administer."""

    change_form_template = "admin/hub_change_form.html"
    #: what household admins may do with the model (operators may do everything)
    household_admin_may_add = True
    household_admin_may_delete = True

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request.user)

    # --- permissions: roles, not Django's per-user permission rows ------------------------------
    def has_module_permission(self, request) -> bool:
        return may_enter_console(request.user)

    def _may(self, request, obj=None) -> bool:
        if is_operator(request.user):
            return True
        if not administered_household_ids(request.user):
            return False
        return obj is None or in_scope(obj, request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._may(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._may(request, obj) and not self.is_config_managed(obj)

    def has_add_permission(self, request, *args) -> bool:
        return self._may(request) and (is_operator(request.user) or self.household_admin_may_add)

    def has_delete_permission(self, request, obj=None) -> bool:
        allowed = is_operator(request.user) or self.household_admin_may_delete
        return allowed and self._may(request, obj) and not self.is_config_managed(obj)

    def get_changeform_initial_data(self, request):
        """A household field starts on the admin's household when they administer just one."""
        initial = super().get_changeform_initial_data(request)
        households = administered_household_ids(request.user)
        if len(households) == 1:
            initial.setdefault("household", next(iter(households)))
        return initial

    def get_list_filter(self, request):
        """Related-field filters list only choices in scope (Django's would list every household)."""
        return [ScopedRelatedFilter.wrap(self.model, entry) for entry in super().get_list_filter(request)]

    # --- choices: never offer another household's objects -------------------------------------
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        return _scoped_choices(field, request)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        return _scoped_choices(field, request)

    # --- another household's object is a 404 (Django would redirect with "doesn't exist") ------
    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404(f"No {opts.verbose_name} with this id.")

    def delete_view(self, request, object_id, extra_context=None):
        # Django checks the delete permission before looking the object up: out of scope is a 404 first.
        if self.get_object(request, object_id) is None:
            raise Http404(f"No {self.opts.verbose_name} with this id.")
        return super().delete_view(request, object_id, extra_context)


class HouseholdScopedInline:
    """Mixin for inlines: rows and choices scoped like the parent admin."""

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request.user)

    def _may(self, request, obj=None) -> bool:
        return is_operator(request.user) or bool(administered_household_ids(request.user))

    def has_view_permission(self, request, obj=None) -> bool:
        return self._may(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._may(request, obj) and not getattr(obj, "managed", False)

    def has_add_permission(self, request, obj=None) -> bool:
        return self._may(request, obj) and not getattr(obj, "managed", False)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._may(request, obj) and not getattr(obj, "managed", False)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return _scoped_choices(super().formfield_for_foreignkey(db_field, request, **kwargs), request)


class OperatorOnlyAdmin(ConfigManagedReadOnly, admin.ModelAdmin):
    """Hub-wide objects (upstreams, signing keys, …): operators only; a household admin never sees them."""

    change_form_template = "admin/hub_change_form.html"

    def has_module_permission(self, request) -> bool:
        return is_operator(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_operator(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return is_operator(request.user) and not self.is_config_managed(obj)

    def has_add_permission(self, request, *args) -> bool:
        return is_operator(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return is_operator(request.user) and not self.is_config_managed(obj)


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    def field_choices(self, field, request, model_admin):
        related = scope_queryset(field.related_model._default_manager.all(), request.user)
        return [(obj.pk, str(obj)) for obj in related]

    @classmethod
    def wrap(cls, model, entry):
        if isinstance(entry, str) and "__" not in entry:
            field = model._meta.get_field(entry)
            if field.is_relation:
                return (entry, cls)
        return entry


def _scoped_choices(field, request):
    """Every choice a form offers goes through the scope (a non-operator gets none of an unscoped model)."""
    if getattr(field, "queryset", None) is not None:
        field.queryset = scope_queryset(field.queryset, request.user)
    return field
