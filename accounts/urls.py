from django.urls import path

from . import passkey_views, views

app_name = "accounts"

urlpatterns = [
    path("login/", views.login_choice, name="login"),
    path("login/passkey/options/", passkey_views.sign_in_options, name="passkey-sign-in-options"),
    path("login/passkey/verify/", passkey_views.sign_in_verify, name="passkey-sign-in"),
    path("login/<slug:upstream_id>/", views.login_upstream, name="login-upstream"),
    path("login/<slug:upstream_id>/mock/", views.mock_upstream, name="mock-upstream"),
    path("complete/<slug:upstream_id>/", views.complete, name="complete"),
    path("account/", views.account, name="account"),
    path("account/passkeys/options/", passkey_views.add_options, name="passkey-add-options"),
    path("account/passkeys/verify/", passkey_views.add_verify, name="passkey-add"),
    path("account/passkeys/<int:pk>/rename/", passkey_views.rename, name="passkey-rename"),
    path("account/passkeys/<int:pk>/remove/", passkey_views.remove, name="passkey-remove"),
    path("profile/", views.profile, name="profile"),  # the old address: redirects to account/
    path("sign-out/", views.sign_out, name="sign-out"),
    path("sign-out/everywhere/", views.sign_out_everywhere, name="sign-out-everywhere"),
    path("logged-out/", views.logged_out, name="logged-out"),
]
