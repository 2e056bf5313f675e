"""The console's front page: each household's NASes with sync health, people without a NAS
account, and recent refusals with a link to fix each. Read-only; scoped like every admin page."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Household, Membership, User
from accounts.roles import administered_household_ids, is_operator
from identityhub.models import AuditEvent
from joining.models import AccessRequest, Invitation
from synology.models import NAS, DSMAccount
from synology.selectors import sync_health

from .audit_scope import audit_events_for

RECENT_REFUSALS = 10



@dataclass
class NASLine:
    nas: NAS
    health: str
    ok: bool
    url: str
    people_without_account: list[User] = field(default_factory=list)


@dataclass
class HouseholdPanel:
    household: Household
    url: str
    nases: list[NASLine]
    open_requests: int = 0
    requests_url: str = ""
    waiting_invitations: int = 0
    invitations_url: str = ""
    invite_url: str = ""


@dataclass
class RefusalLine:
    event: AuditEvent
    who: str
    fix_label: str
    fix_url: str


def build_dashboard(user) -> dict:
    households = Household.objects.order_by("name")
    if not is_operator(user):
        households = households.filter(pk__in=administered_household_ids(user))
    households = list(households)
    ids = [h.pk for h in households]
    nases = list(NAS.objects.filter(household_id__in=ids).defer("service_password").order_by("id"))
    members: dict[str, list[User]] = {}
    for membership in Membership.objects.filter(household_id__in=ids, user__is_active=True).select_related("user"):
        members.setdefault(membership.household_id, []).append(membership.user)
    with_account = set(
        DSMAccount.objects.filter(nas__in=nases, present=True, user__isnull=False).values_list("nas_id", "user_id")
    )
    joining = _joining_counts(ids)
    panels = []
    for household in households:
        lines = []
        for nas in (n for n in nases if n.household_id == household.pk):
            missing = sorted((u for u in members.get(household.pk, []) if (nas.pk, u.pk) not in with_account),
                             key=lambda u: u.email)
            lines.append(NASLine(nas, sync_health(nas), nas.last_status == NAS.Status.OK,
                                 reverse("admin:synology_nas_change", args=[nas.pk]), missing))
        panels.append(HouseholdPanel(household, reverse("admin:accounts_household_change", args=[household.pk]),
                                     lines, **joining.get(household.pk, {})))
    refusals = audit_events_for(user).filter(kind=AuditEvent.Kind.REFUSAL).select_related("user")
    return {
        "households": panels,
        "refusals": [refusal_line(e) for e in refusals[:RECENT_REFUSALS]],
        "audit_url": reverse("admin:identityhub_auditevent_changelist") + "?" + urlencode({"kind": "refusal"}),
    }


def _joining_counts(household_ids: list[str]) -> dict[str, dict]:
    """Per household: open access requests and waiting invitations, with the lists that show them."""
    def per_household(queryset) -> dict[str, int]:
        return dict(queryset.filter(household_id__in=household_ids).order_by().values("household_id")
                    .annotate(n=Count("id")).values_list("household_id", "n"))

    requests = per_household(AccessRequest.objects.filter(state=AccessRequest.State.OPEN))
    invitations = per_household(Invitation.objects.filter(used_at=None, revoked_at=None,
                                                          expires_at__gt=timezone.now()))
    counts = {}
    for household_id in household_ids:
        where = {"household__id__exact": household_id}
        counts[household_id] = {
            "open_requests": requests.get(household_id, 0),
            "requests_url": reverse("admin:joining_accessrequest_changelist") + "?" + urlencode(
                {"state": AccessRequest.State.OPEN, **where}),
            "waiting_invitations": invitations.get(household_id, 0),
            "invitations_url": reverse("admin:joining_invitation_changelist") + "?" + urlencode(
                {"state": Invitation.State.PENDING, **where}),
            "invite_url": reverse("admin:joining_invitation_add") + "?" + urlencode({"household": household_id}),
        }
    return counts


def refusal_line(event: AuditEvent) -> RefusalLine:
    """What went wrong, and the page where an admin fixes it."""
    who = event.user.email if event.user_id else (event.email or _("someone unknown"))
    if event.reason == "no_nas_account" and event.nas_id:
        url = reverse("admin:synology_dsmaccount_changelist") + "?" + urlencode({"nas__id__exact": event.nas_id})
        return RefusalLine(event, who, _("Link a DSM account"), url)
    if event.user_id:
        return RefusalLine(event, who, _("Open the person"), reverse("admin:accounts_user_change",
                                                                      args=[event.user_id]))
    if event.email:
        return RefusalLine(event, who, _("Add this person"),
                           reverse("admin:accounts_user_add") + "?" + urlencode({"email": event.email}))
    return RefusalLine(event, who, _("See the audit trail"),
                       reverse("admin:identityhub_auditevent_change", args=[event.pk]))





#: The console's pages in the order a household admin needs them, with the names they use.
SECTIONS: list[tuple[str, str]] = [
    ("accounts.User", gettext_lazy("People")),
    ("accounts.Household", gettext_lazy("Households")),
    ("joining.AccessRequest", gettext_lazy("Access requests")),
    ("joining.Invitation", gettext_lazy("Invitations")),
    ("synology.NAS", gettext_lazy("NASes")),
    ("synology.DSMAccount", gettext_lazy("DSM accounts")),
    ("synology.AccountMapping", gettext_lazy("Account mappings")),
    ("oauth2_provider.Application", gettext_lazy("Apps")),
    ("synology.SyncRun", gettext_lazy("Sync runs")),
    ("identityhub.AuditEvent", gettext_lazy("Audit trail")),
    ("accounts.Upstream", gettext_lazy("Upstreams (operators)")),
    ("oidc.SigningKey", gettext_lazy("Signing keys (operators)")),
]


def console_sections(app_list: list[dict]) -> list[dict]:
    """The pages this person may open (from Django's app list, which applies the permissions)."""
    reachable = {f"{app['app_label']}.{m['object_name']}": m for app in app_list for m in app["models"]}
    sections = []
    for key, label in SECTIONS:
        model = reachable.pop(key, None)
        if model is not None:
            sections.append({"label": label, "url": model.get("admin_url"), "add_url": model.get("add_url")})
    sections += [{"label": m["name"], "url": m.get("admin_url"), "add_url": m.get("add_url")}
                 for m in reachable.values()]
    return sections
