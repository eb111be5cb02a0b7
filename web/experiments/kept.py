"""Files of a create-form submission kept across a validation error, so the user fixes the
field in error and submits again without choosing the four files again (browsers clear file
inputs on every page load).

Each file lies in `$NNT_HOME/kept-uploads/<user id>/<token>/` (a folder only the web's user may
enter) with what the page shows of it; the page carries the token in a hidden field. A token is
random, works only for the user it was made for and only for the field it was made for, and
expires after KEEP_S. A user has one submission's files kept at a time: keeping new ones drops
their older ones, so failed submissions cannot fill the disk.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from web.config import private_dir
from web.simulations.uploads import human

KEEP_S = 3600  # an hour to fix the form
TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class KeptFile:
    """A kept upload, read like Django's UploadedFile (name, size, chunks)."""

    token: str
    field: str
    name: str
    size: int
    path: Path

    def chunks(self, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """The file's bytes, from the start every time."""
        with self.path.open("rb") as handle:
            while block := handle.read(chunk_size):
                yield block

    def label(self) -> str:
        """What the form says of it: `model.json (12.0 KiB)`."""
        return f"{self.name} ({human(self.size)})"


def _root() -> Path:
    return private_dir(settings.NNT_HOME / "kept-uploads")


def _folder(user: Any) -> Path:
    return _root() / str(int(user.pk))


def _expired(entry: Path, now: float) -> bool:
    try:
        return now - entry.stat().st_mtime > KEEP_S
    except OSError:
        return True


def sweep(now: float | None = None) -> None:
    """Remove every user's kept files older than KEEP_S."""
    now = time.time() if now is None else now
    for user_dir in _root().iterdir():
        for entry in user_dir.iterdir() if user_dir.is_dir() else ():
            if _expired(entry, now):
                shutil.rmtree(entry, ignore_errors=True)


def keep(user: Any, files: dict[str, Any], still: list[KeptFile]) -> dict[str, KeptFile]:
    """Keep `files` (field -> upload) for `user`, beside the kept files `still` in use; every
    other file kept for the user goes. Field -> what the page shows and sends back."""
    sweep()
    folder = private_dir(_folder(user))
    out = {k.field: k for k in still}
    for field, upload in files.items():
        token = secrets.token_urlsafe(24)
        entry = private_dir(folder / token)
        with (entry / "data").open("wb") as handle:
            for block in upload.chunks():
                handle.write(block)
        name = Path(upload.name or field).name[:200]
        size = (entry / "data").stat().st_size
        meta = {"field": field, "name": name, "size": size, "user": int(user.pk)}
        (entry / "meta.json").write_text(json.dumps(meta))
        out[field] = KeptFile(token, field, name, size, entry / "data")
    wanted = {k.token for k in out.values()}
    for entry in folder.iterdir():
        if entry.name not in wanted:
            shutil.rmtree(entry, ignore_errors=True)
    return out


def take(user: Any, field: str, token: str) -> KeptFile | None:
    """The file kept for `user` and `field` under `token`; None when the token is not theirs,
    not for this field, expired or gone."""
    if not getattr(user, "is_authenticated", False) or not TOKEN.match(token or ""):
        return None
    entry = _folder(user) / token
    try:
        meta = json.loads((entry / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    if meta.get("user") != int(user.pk) or meta.get("field") != field:
        return None
    if _expired(entry, time.time()):
        shutil.rmtree(entry, ignore_errors=True)
        return None
    return KeptFile(token, field, str(meta["name"]), int(meta["size"]), entry / "data")


def discard(user: Any, kept: list[KeptFile]) -> None:
    """Forget kept files once a submission used them."""
    for item in kept:
        shutil.rmtree(_folder(user) / item.token, ignore_errors=True)
