"""Console pages: the users list, a user's page, and the admin actions (staff only)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from web.accounts import quotas
from web.console import users
from web.console.forms import GIB, IN_GIB, QuotaForm, UserFilterForm
from web.errors import Forbidden, KafkaUnavailable, NotFound
from web.simulations import storage

View = Callable[..., HttpResponse]


def staff_required(view: View) -> View:
    """Anonymous → login page; signed in without staff → 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied("The admin console is for administrators.")
        return view(request, *args, **kwargs)

    return login_required(wrapped)


def _target(user_id: int) -> Any:
    try:
        return users.get_user(user_id)
    except NotFound:
        raise Http404("no such user") from None


@staff_required
def user_list(request: HttpRequest) -> HttpResponse:
    """All users: search, filter by role and state, sort, 50 a page."""
    form = UserFilterForm(request.GET or None)
    params = form.cleaned_data if form.is_valid() else {}
    qs = users.users(
        params.get("q", ""),
        params.get("staff", ""),
        params.get("active", ""),
        params.get("sort") or "username",
    )
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "filtered": any(params.values()) if params else False,
        "query": query.urlencode(),
    }
    return render(request, "console/users.html", context)


@staff_required
def user_detail(
    request: HttpRequest, user_id: int, quota_form: QuotaForm | None = None
) -> HttpResponse:
    """One user: role and state, counts, current resource use, quota, simulations."""
    target = _target(user_id)
    limits = quotas.effective(target)
    if quota_form is None:
        quota_form = QuotaForm(initial=QuotaForm.initial_of(limits))
    quota_form.fields["max_concurrent_runs"].widget.attrs["placeholder"] = (
        f"default {quotas.defaults()[0]}"
    )
    quota_form.fields["max_memory_gib"].widget.attrs["placeholder"] = (
        f"default {quotas.defaults()[1] / GIB:g}"
    )
    for name in quotas.EXTRA:
        per_run = name.startswith("max_run_")
        quota_form.fields[IN_GIB.get(name, name)].widget.attrs["placeholder"] = (
            "the host's" if per_run else "no limit"
        )
    sims = users.simulations_of(target).exclude(status="deleted")[:200]
    context = {
        "target": target,
        "counts": users.counts(target),
        "usage": users.usage(target),
        "limits": limits,
        "storage_bytes": storage.used_bytes(target),
        "quota_form": quota_form,
        "simulations": sims,
        "is_self": target.pk == request.user.pk,
    }
    return render(request, "console/user.html", context, status=400 if quota_form.errors else 200)


def _back(request: HttpRequest, user_id: int) -> HttpResponse:
    """Return to the page the action came from (list or user page)."""
    if request.POST.get("next") == "list":
        return redirect("console:users")
    return redirect("console:user", user_id=user_id)


@staff_required
@require_POST
def set_staff(request: HttpRequest, user_id: int) -> HttpResponse:
    """Grant (staff=1) or revoke (staff=0) admin rights."""
    target = _target(user_id)
    grant = request.POST.get("staff") == "1"
    try:
        users.set_staff(request.user, target, grant)
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from None
    verb = "is now an admin" if grant else "is no longer an admin"
    messages.success(request, f"{target.get_username()} {verb}.")
    return _back(request, user_id)


@staff_required
@require_POST
def set_active(request: HttpRequest, user_id: int) -> HttpResponse:
    """Enable (active=1) or disable (active=0) an account."""
    target = _target(user_id)
    enable = request.POST.get("active") == "1"
    try:
        users.set_active(request.user, target, enable)
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from None
    verb = "is enabled" if enable else "is disabled and can no longer log in"
    messages.success(request, f"{target.get_username()} {verb}.")
    return _back(request, user_id)


@staff_required
def delete_user(request: HttpRequest, user_id: int) -> HttpResponse:
    """GET: the confirmation page; POST: delete the user and everything they own."""
    target = _target(user_id)
    if target.pk == request.user.pk:
        raise PermissionDenied("You cannot delete your own account.")
    if request.method != "POST":
        return render(
            request, "console/delete.html", {"target": target, "counts": users.counts(target)}
        )
    name = target.get_username()
    try:
        stopped = users.delete(request.user, target)
    except KafkaUnavailable as exc:
        messages.error(request, f"{name} was not deleted: {exc.message}")
        return redirect("console:user", user_id=user_id)
    extra = f"; {stopped} unfinished run(s) were told to stop and delete" if stopped else ""
    messages.success(request, f"{name} was deleted{extra}.")
    return redirect("console:users")


@staff_required
@require_POST
def set_quota(request: HttpRequest, user_id: int) -> HttpResponse:
    """Store the user's quota override."""
    target = _target(user_id)
    form = QuotaForm(request.POST)
    if not form.is_valid():
        return user_detail(request, user_id, quota_form=form)
    quotas.set_limits(target, *form.limits(), **form.extra())
    messages.success(request, f"Quota of {target.get_username()} saved.")
    return redirect("console:user", user_id=user_id)
