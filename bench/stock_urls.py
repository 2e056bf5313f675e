"""Benchmark only: DOT's stock views at the hub's paths."""

from django.urls import include, path, re_path
from oauth2_provider import views as dot

stock = [
    re_path(r"^\.well-known/openid-configuration/?$", dot.ConnectDiscoveryInfoView.as_view(),
            name="oidc-connect-discovery-info"),
    path(".well-known/jwks.json", dot.JwksInfoView.as_view(), name="jwks-info"),
    path("authorize/", dot.AuthorizationView.as_view(), name="authorize"),
    path("token/", dot.TokenView.as_view(), name="token"),
    path("userinfo/", dot.UserInfoView.as_view(), name="user-info"),
    path("logout/", dot.RPInitiatedLogoutView.as_view(), name="rp-initiated-logout"),
]
urlpatterns = [
    path("", include((stock, "oauth2_provider"))),
    path("", include("accounts.urls")),
]
