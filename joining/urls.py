from django.urls import path

from . import views

app_name = "joining"

urlpatterns = [
    path("invite/<str:token>/", views.invitation, name="invitation"),
    path("invite/<str:token>/sign-in/<slug:upstream_id>/", views.invitation_upstream, name="invitation-upstream"),
    path("invite/<str:token>/join/", views.invitation_join, name="invitation-join"),
    path("invite/<str:token>/passkey/options/", views.invitation_passkey_options, name="invitation-passkey-options"),
    path("invite/<str:token>/passkey/", views.invitation_passkey, name="invitation-passkey"),
    path("welcome/", views.welcome, name="welcome"),
    path("ask-for-access/", views.ask, name="ask"),
    path("ask-for-access/sent/", views.asked, name="asked"),
]
