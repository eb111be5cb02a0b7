"""REST endpoints of accounts: exchange a username and password for a token."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.http import HttpRequest
from ninja import Router, Schema, Status

from web.accounts.models import ApiToken
from web.errors import Unauthorized

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


@router.post("/tokens", response={201: TokenOut}, auth=None)
def create_token(request: HttpRequest, body: TokenIn) -> Status[TokenOut]:
    """Issue a bearer token for scripts."""
    user = authenticate(request, username=body.username, password=body.password)
    if user is None:
        raise Unauthorized("wrong username or password")
    _, token = ApiToken.issue(user, name=body.name)
    return Status(201, TokenOut(token=token, username=user.get_username()))
