"""The console's Health checks page: `hub doctor`'s checks, run when someone presses the button.

The checks make network calls (the issuer's public URL, the upstreams, every NAS), so they never run
on a page load: GET shows the button, POST runs them and shows the lines. Operators get every check
and the DSM values of every DSM app. A household admin gets the checks of their own households' NASes
(reachable, service account, listing rights, DSM version) and their DSM apps' values: the hub-wide
checks (issuer, TLS, upstreams, clock, signing key, database) are the operator's to fix.
"""

from __future__ import annotations

from django.http import HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.roles import administered_household_ids, is_operator
from identityhub.oidc.doctor import FAIL, OK, WARN, run_checks
from synology.models import NAS

BADGES = {OK: ("hub-badge-ok", gettext_lazy("ok")), WARN: ("hub-badge-warn", gettext_lazy("warning")),
          FAIL: ("hub-badge-fail", gettext_lazy("failed"))}


def health_view(request, admin_site):
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    operator = is_operator(request.user)
    context = {**admin_site.each_context(request), "title": _("Health checks"), "operator": operator,
               "ran": False}
    if request.method == "POST":
        if operator:
            report = run_checks()
        else:
            nas_ids = list(NAS.objects.filter(household_id__in=administered_household_ids(request.user))
                           .values_list("pk", flat=True))
            report = run_checks(hub_wide=False, nas_ids=nas_ids)
        context.update(
            ran=True, failed=report.failed, dsm_apps=report.dsm_apps,
            checks=[{"check": check, "css": BADGES[check.status][0], "badge": BADGES[check.status][1]}
                    for check in report.checks],
        )
    response = TemplateResponse(request, "admin/hub_health.html", context)
    response["Cache-Control"] = "no-store"
    return response
