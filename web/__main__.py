"""`python -m web serve` runs daphne; `python -m web manage <args>` runs management commands."""

from __future__ import annotations

import os
import sys

USAGE = "usage: python -m web serve | python -m web manage <django command> [args]"


def manage(args: list[str]) -> None:
    """Run a Django management command."""
    from django.core.management import execute_from_command_line

    execute_from_command_line(["python -m web manage", *args])


def serve(args: list[str]) -> None:
    """Serve web.asgi:application with daphne on 127.0.0.1:$NNT_WEB_PORT."""
    import tempfile

    import django
    from daphne.cli import CommandLineInterface
    from django.conf import settings

    django.setup()  # fail fast on bad configuration, before binding the port
    from web import server

    server.install()  # request bodies over their cap are refused before they are buffered
    # Request bodies that are kept are spooled by Django (and daphne) into temp files: in the
    # private $NNT_HOME/tmp, not the shared /tmp.
    tempfile.tempdir = settings.FILE_UPLOAD_TEMP_DIR
    port = str(settings.NNT_WEB_PORT)
    CommandLineInterface().run(["-b", "127.0.0.1", "-p", port, *args, "web.asgi:application"])


def main(argv: list[str] | None = None) -> None:
    """Dispatch `serve` or `manage`."""
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "web.settings")
    if not argv or argv[0] not in ("serve", "manage"):
        sys.exit(USAGE)
    try:
        (serve if argv[0] == "serve" else manage)(argv[1:])
    except Exception as exc:
        from django.core.exceptions import ImproperlyConfigured

        if isinstance(exc, ImproperlyConfigured):
            sys.exit(f"nntracker web: configuration error: {exc}")
        raise


if __name__ == "__main__":
    main()
