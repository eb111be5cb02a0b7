"""Account pages: registration (login and logout use Django's views)."""

from __future__ import annotations

from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from web.accounts.forms import RegisterForm


def register(request: HttpRequest) -> HttpResponse:
    """Create an account and log it in."""
    if request.user.is_authenticated:
        return redirect("simulations:list")
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("simulations:list")
    return render(request, "accounts/register.html", {"form": form})
