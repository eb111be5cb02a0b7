"""API authentication: bearer token or the browser's Django session (with CSRF)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer, django_auth

from web.accounts.models import ApiToken, hash_token


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`; the token's user becomes `request.auth`."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        """The token's active user, or None."""
        row = ApiToken.objects.select_related("user").filter(key_hash=hash_token(token)).first()
        if row is None or not row.user.is_active:
            return None
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
        request.user = row.user
        return row.user


API_AUTH = [TokenAuth(), django_auth]
