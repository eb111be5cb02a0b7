"""The stream processors' one base exception and its kinds."""

from __future__ import annotations


class StreamError(Exception):
    """Base of every error raised by the stream processors."""


class DecodeError(StreamError):
    """A message that cannot be decoded; it goes to the dead-letter topic."""


class ConfigError(StreamError):
    """A bad environment variable; the text names it and the fix."""
