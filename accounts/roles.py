"""Who may do what (DESIGN.md "Roles"), derived from the memberships on every request.

- Operator: a Django superuser (config `operators:`, or `createsuperuser`). Runs the whole hub.
- Household admin: `role: admin` in a household. Django staff, never superuser; sees and changes
  only the objects of the households they administer.
- Member: signs in and sees their own account page.

Nothing here trusts a stored flag for household rights: `administered_household_ids` reads the
memberships (once per request, cached on the user object, which Django loads anew per request),
so demoting or removing an admin takes effect on their next request, whatever changed the row.
"""

from __future__ import annotations

from .models import Membership, User

_CACHE_ATTR = "_hub_administered_households"


def administered_household_ids(user) -> frozenset[str]:
    """The ids of the households `user` administers (empty for anonymous or inactive people)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        admin_rows = Membership.objects.filter(user_id=user.pk, role=Membership.Role.ADMIN)
        cached = frozenset(admin_rows.values_list("household_id", flat=True))
        setattr(user, _CACHE_ATTR, cached)
    return cached


def forget_cached_roles(user) -> None:
    """Drop the per-object cache (after a membership change within the same request)."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def is_operator(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_superuser)


def is_household_admin(user) -> bool:
    return bool(administered_household_ids(user))


def may_enter_console(user) -> bool:
    """The admin site is for operators and household admins — decided from the memberships."""
    return is_operator(user) or is_household_admin(user)


def sync_staff_flag(user: User) -> None:
    """Keep `is_staff` equal to the role it mirrors (informational: the console never trusts it).

    Operators keep staff; household admins get it; everyone else loses it. `is_superuser` is never
    granted here: only `set_operators` (config) and `createsuperuser` make operators.
    """
    staff = user.is_superuser or Membership.objects.filter(user_id=user.pk, role=Membership.Role.ADMIN).exists()
    if user.is_staff != staff:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])
    forget_cached_roles(user)
