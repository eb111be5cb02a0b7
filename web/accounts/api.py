"""REST endpoints of accounts: exchange a username and password for a token; list and revoke."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import authenticate
from django.http import HttpRequest
from ninja import Router, Schema, Status

from web.accounts import throttle
from web.accounts.auth import API_AUTH
from web.accounts.models import ApiToken
from web.errors import NotFound, Throttled, Unauthorized

router = Router(tags=["accounts"])


class TokenIn(Schema):
    """Credentials for a new token."""

    username: str
    password: str
    name: str = ""


class TokenOut(Schema):
    """A new token; it is shown only once."""

    token: str
    username: str


class TokenInfoOut(Schema):
    """A token as listed: never the secret, only its first characters."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


@router.post("/tokens", response={201: TokenOut}, auth=None)
def create_token(request: HttpRequest, body: TokenIn) -> Status[TokenOut]:
    """Issue a bearer token for scripts (failed attempts count toward the login lockout)."""
    ip = throttle.client_ip(request)
    wait = throttle.locked_for(body.username, ip)
    if wait:
        raise Throttled(throttle.lockout_message(wait))
    user = authenticate(request, username=body.username, password=body.password)
    if user is None:
        throttle.record_failure(body.username, ip)
        raise Unauthorized("wrong username or password")
    throttle.clear(body.username, ip)
    _, token = ApiToken.issue(user, name=body.name[:100])
    return Status(201, TokenOut(token=token, username=user.get_username()))


@router.get("/tokens", response=list[TokenInfoOut], auth=API_AUTH)
def list_tokens(request: HttpRequest) -> list[ApiToken]:
    """The caller's tokens, newest first."""
    return list(ApiToken.objects.filter(user=request.auth).order_by("-created_at"))


@router.delete("/tokens/{token_id}", response={204: None}, auth=API_AUTH)
def revoke_token(request: HttpRequest, token_id: int) -> Status[None]:
    """Revoke one of the caller's tokens (another user's token is 404)."""
    deleted, _ = ApiToken.objects.filter(pk=token_id, user=request.auth).delete()
    if not deleted:
        raise NotFound(f"no token {token_id}")
    return Status(204, None)
