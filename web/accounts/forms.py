"""Registration form."""

from __future__ import annotations

from django.contrib.auth.forms import UserCreationForm


class RegisterForm(UserCreationForm):
    """Username and password twice; Django's password validators apply."""
