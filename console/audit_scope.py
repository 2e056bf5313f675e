"""Which audit events a household admin may read: those of their NASes and apps, and the
sign-ins of their members that concern no other household's app or NAS."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from oauth2_provider.models import Application

from accounts.admin_scoping import register_scope, scope_queryset
from identityhub.models import AuditEvent
from synology.models import NAS


def household_audit_filter(household_ids: frozenset[str]) -> Q:
    nas_ids = NAS.objects.filter(household_id__in=household_ids).values("pk")
    client_ids = Application.objects.filter(
        Q(profile__households__in=household_ids) | Q(profile__nas__household_id__in=household_ids)
    ).values("client_id")
    members = Q(user__memberships__household_id__in=household_ids, client_id="", nas_id="")
    return Q(nas_id__in=nas_ids) | Q(client_id__in=client_ids) | members


register_scope(AuditEvent, household_audit_filter, distinct=True)


def audit_events_for(user) -> QuerySet[AuditEvent]:
    return scope_queryset(AuditEvent.objects.all(), user)
