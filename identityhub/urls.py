"""URLs. Only the provider views the hub needs are mounted (never DOT's application management).

When the issuer carries a path, everything lives under it (settings.HUB_URL_PREFIX).
"""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from . import metrics, views

hub_patterns = [
    path("", include("identityhub.oidc.urls")),
    path("", include("accounts.urls")),
    path("", include("joining.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the footer's language switcher
    # Browsers ask for /favicon.ico on every page that names none (the admin's). As a 404 it rendered
    # a page with a CSRF token; that parallel request, sent before the page's CSRF cookie arrived,
    # replaced the cookie and the page's first form post failed as "expired".
    path("favicon.ico", views.favicon, name="favicon"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),  # 404 unless HUB_METRICS_TOKEN is set
    path("", views.home, name="home"),
]
if settings.DEBUG:
    hub_patterns.append(path("demo/", include("identityhub.demo.urls")))

urlpatterns = [path(f"{settings.HUB_URL_PREFIX}/", include(hub_patterns))] if settings.HUB_URL_PREFIX else hub_patterns

handler400 = "identityhub.views.bad_request"
handler403 = "identityhub.views.permission_denied"
handler404 = "identityhub.views.page_not_found"
handler500 = "identityhub.views.server_error"
