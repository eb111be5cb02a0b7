"""Exceptions of the web package and their HTTP answers, mapped in one place."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # keep this module importable without Django settings (unit tests)
    from django.http import HttpRequest, HttpResponse
    from ninja import NinjaAPI


class OneLine(logging.Filter):
    """Logs a client's mistake as one line: Django reports a request with a bad Host header
    (`django.security.DisallowedHost`, answered 400) with the traceback of where it noticed,
    which says nothing about the product and buries real failures in the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True


class WebError(Exception):
    """Base of every web error; `status` is the HTTP status it answers with."""

    status = 400

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}

    def body(self) -> dict[str, Any]:
        """JSON body of the answer."""
        out: dict[str, Any] = {"detail": self.message}
        if self.errors:
            out["errors"] = self.errors
        return out


class Invalid(WebError):
    """Input that fails validation; `errors` maps field paths to messages."""

    status = 422


class TooLarge(WebError):
    """An upload or request over a size limit; `errors` names each field, its size and the
    limit's variable. Nothing of it was stored."""

    status = 413


class Unauthorized(WebError):
    """Missing or wrong credentials."""

    status = 401


class Forbidden(WebError):
    """Authenticated, but not allowed (e.g. a non-staff user on an admin endpoint)."""

    status = 403


class Throttled(WebError):
    """Too many attempts; try again later."""

    status = 429


class NotFound(WebError):
    """No such object, or not one the caller may see."""

    status = 404


class Conflict(WebError):
    """The object's state does not allow the request (e.g. pausing a finished run)."""

    status = 409


class KafkaUnavailable(WebError):
    """Kafka did not acknowledge a command in time."""

    status = 503


class PreflightUnavailable(WebError):
    """No orchestrator answered the pre-flight check in time; nothing was created."""

    status = 503


def request_errors(errors: list[dict[str, Any]]) -> dict[str, str]:
    """Ninja's request validation errors as {"field": "message"} (the `body`/`form` prefix dropped)."""
    out: dict[str, str] = {}
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        path = ".".join(loc[1:] if len(loc) > 1 else loc) or "__all__"
        out[path] = err.get("msg", "invalid")
    return out


def install(api: NinjaAPI) -> None:
    """Register the handlers of every WebError, and of request validation, on the API."""
    from django.db import DataError
    from ninja.errors import ValidationError

    def handle(request: HttpRequest, exc: WebError) -> HttpResponse:
        return api.create_response(request, exc.body(), status=exc.status)

    def handle_request(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        from web.simulations.uploads import refusal

        too_large = refusal(request)  # a refused file is the answer, not the fields it left out
        if too_large is not None:
            return handle(request, too_large)
        body = {"detail": "invalid request", "errors": request_errors(exc.errors)}
        return api.create_response(request, body, status=422)

    def handle_data(request: HttpRequest, exc: DataError) -> HttpResponse:
        # A safety net: inputs are checked for NUL where they enter, but PostgreSQL has the
        # last word, and a NUL it refuses is the caller's input, not a server fault.
        if "NUL" not in str(exc):
            raise exc
        body = {"detail": "text cannot contain NUL characters (\\u0000); remove them"}
        return api.create_response(request, body, status=422)

    api.add_exception_handler(WebError, handle)
    api.add_exception_handler(ValidationError, handle_request)
    api.add_exception_handler(DataError, handle_data)
