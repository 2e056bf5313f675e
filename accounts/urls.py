from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.login_choice, name="login"),
    path("login/<slug:upstream_id>/", views.login_upstream, name="login-upstream"),
    path("login/<slug:upstream_id>/mock/", views.mock_upstream, name="mock-upstream"),
    path("complete/<slug:upstream_id>/", views.complete, name="complete"),
    path("profile/", views.profile, name="profile"),
]
