"""Console URLs (staff only)."""

from __future__ import annotations

from django.urls import path

from web.console import views

app_name = "console"
urlpatterns = [
    path("", views.user_list, name="users"),
    path("users/<int:user_id>/", views.user_detail, name="user"),
    path("users/<int:user_id>/staff/", views.set_staff, name="set_staff"),
    path("users/<int:user_id>/active/", views.set_active, name="set_active"),
    path("users/<int:user_id>/delete/", views.delete_user, name="delete"),
    path("users/<int:user_id>/quota/", views.set_quota, name="set_quota"),
]
