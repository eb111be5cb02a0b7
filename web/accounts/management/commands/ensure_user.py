"""`ensure_user`: create or update a user idempotently (used by `make up` for the demo user)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    """Create the user if missing; set its password and staff flag either way."""

    help = "Create or update a user: --username U --password P [--staff]"

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the options."""
        parser.add_argument("--username", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--staff", action="store_true", help="staff and superuser")

    def handle(self, *args: Any, **options: Any) -> None:
        """Create or update, then print the user."""
        users = get_user_model()
        user, created = users.objects.get_or_create(username=options["username"])
        user.set_password(options["password"])
        user.is_active = True
        if options["staff"]:
            user.is_staff = user.is_superuser = True
        user.save()
        role = "staff" if user.is_staff else "user"
        verb = "created" if created else "updated"
        self.stdout.write(f"{verb} {role} {user.get_username()} (id {user.pk})")
