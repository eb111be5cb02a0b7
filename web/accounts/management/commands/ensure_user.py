"""`ensure_user`: create or update a user idempotently; `--create-only` for the demo user.

The password comes on standard input (`--password-stdin`) or in NNT_USER_PASSWORD, never on
the command line, where every user of the machine sees it (`ps`). `--password` still works for
old scripts, with a warning.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

PASSWORD_VARIABLE = "NNT_USER_PASSWORD"


class Command(BaseCommand):
    """Create the user if missing; unless --create-only, set its password, re-enable it and
    set its staff flag either way."""

    help = (
        "Create or update a user: --username U [--staff] [--create-only], the password on "
        f"standard input (--password-stdin) or in {PASSWORD_VARIABLE}"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the options."""
        parser.add_argument("--username", required=True)
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )
        parser.add_argument(
            "--password",
            help=f"deprecated: shows in `ps`; use --password-stdin or {PASSWORD_VARIABLE}",
        )
        parser.add_argument("--staff", action="store_true", help="staff and superuser")
        parser.add_argument(
            "--create-only",
            action="store_true",
            help="leave an existing user exactly as it is (password, enabled or not, staff)",
        )

    def _password(self, options: dict[str, Any]) -> str:
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
        elif options.get("password"):
            self.stderr.write(
                "warning: --password shows the password to every user of this machine (ps); "
                f"use --password-stdin or {PASSWORD_VARIABLE}"
            )
            password = options["password"]
        else:
            password = os.environ.get(PASSWORD_VARIABLE, "")
        if not password:
            raise CommandError(
                f"no password: give it on standard input with --password-stdin, or in "
                f"{PASSWORD_VARIABLE}"
            )
        return password

    def handle(self, *args: Any, **options: Any) -> None:
        """Create (or update), then print the user."""
        users = get_user_model()
        password = self._password(options)
        user = users.objects.filter(username=options["username"]).first()
        if user is not None and options["create_only"]:
            state = "enabled" if user.is_active else "disabled"
            self.stdout.write(f"exists {user.get_username()} (id {user.pk}, {state}): unchanged")
            return
        created = user is None
        if user is None:
            user = users(username=options["username"])
        user.set_password(password)
        user.is_active = True
        if options["staff"]:
            user.is_staff = user.is_superuser = True
        user.save()
        role = "staff" if user.is_staff else "user"
        verb = "created" if created else "updated"
        self.stdout.write(f"{verb} {role} {user.get_username()} (id {user.pk})")
