from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.login_choice, name="login"),
    path("login/<slug:upstream_id>/", views.login_upstream, name="login-upstream"),
    path("login/<slug:upstream_id>/mock/", views.mock_upstream, name="mock-upstream"),
    path("complete/<slug:upstream_id>/", views.complete, name="complete"),
    path("account/", views.account, name="account"),
    path("profile/", views.profile, name="profile"),  # the old address: redirects to account/
    path("sign-out/", views.sign_out, name="sign-out"),
    path("sign-out/everywhere/", views.sign_out_everywhere, name="sign-out-everywhere"),
    path("logged-out/", views.logged_out, name="logged-out"),
]
