"""Account URLs."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from web.accounts import views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("register/", views.register, name="register"),
    path("", views.account, name="account"),
    path("username/", views.change_username, name="change_username"),
    path("password/", views.change_password, name="change_password"),
    path("alerts/", views.change_alerts, name="change_alerts"),
    path("tokens/", views.create_token, name="create_token"),
    path("tokens/<int:token_id>/revoke/", views.revoke_token, name="revoke_token"),
]
