"""A small REST client of the NN Tracker API for the CLI (token auth).

Uploads stream from disk as a multipart body and downloads stream to disk, both reporting
their bytes to a callback (the CLI's progress bars); every failure is an InfraError whose text
names the problem and the fix.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.settings import InfraError

if TYPE_CHECKING:
    import requests

Progress = Callable[[int], None]
CHUNK = 1 << 16


def _requests() -> Any:
    try:
        import requests
    except ImportError:  # the `cli` extra is not installed
        raise InfraError(
            "the command line client needs `requests`: pip install 'nntracker[cli]'"
        ) from None
    return requests


class MultipartBody:
    """multipart/form-data read piece by piece from the files, so a large dataset is never held
    in memory; `on_read` gets the size of every piece as requests sends it."""

    def __init__(
        self,
        fields: dict[str, str],
        files: dict[str, tuple[Path, str]],
        on_read: Progress | None = None,
    ) -> None:
        self.boundary = uuid.uuid4().hex
        self.on_read = on_read
        self.parts: list[bytes | Path] = []
        for name, value in fields.items():
            self.parts += [self._head(name) + b"\r\n\r\n" + value.encode() + b"\r\n"]
        for name, (path, content_type) in files.items():
            filename = path.name.replace('"', "%22").replace("\r", "").replace("\n", "")
            head = self._head(name) + f'; filename="{filename}"\r\n'.encode()
            self.parts += [head + f"Content-Type: {content_type}\r\n\r\n".encode(), path, b"\r\n"]
        self.parts.append(f"--{self.boundary}--\r\n".encode())
        self.length = sum(p.stat().st_size if isinstance(p, Path) else len(p) for p in self.parts)
        self._chunks = self._generate()
        self._buffer = b""

    @property
    def content_type(self) -> str:
        """The request's Content-Type header."""
        return f"multipart/form-data; boundary={self.boundary}"

    def _head(self, name: str) -> bytes:
        return f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"'.encode()

    def _generate(self) -> Iterator[bytes]:
        for part in self.parts:
            if isinstance(part, bytes):
                yield part
                continue
            with part.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    yield chunk

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK):
            yield chunk

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes of the body (all that is left when negative)."""
        while size < 0 or len(self._buffer) < size:
            piece = next(self._chunks, None)
            if piece is None:
                break
            self._buffer += piece
        cut = len(self._buffer) if size < 0 else size
        out, self._buffer = self._buffer[:cut], self._buffer[cut:]
        if out and self.on_read:
            self.on_read(len(out))
        return out


class ApiClient:
    """Calls `/api/...` with `Authorization: Bearer <token>`."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60) -> None:
        self.base = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def login(self, username: str, password: str) -> str:
        """Exchange credentials for a token."""
        data = self._call("POST", "/api/tokens", json={"username": username, "password": password})
        self.token = data["token"]
        return self.token

    def upload_body(
        self,
        config: dict[str, Any],
        model: Path,
        datasets: dict[str, Path],
        on_read: Progress | None = None,
    ) -> MultipartBody:
        """The experiment's multipart body, streamed from the files."""
        files = {"model": (model, "application/json")}
        for field, path in datasets.items():
            files[f"dataset_{field}"] = (path, "application/octet-stream")
        return MultipartBody({"config": json.dumps(config)}, files, on_read)

    def submit(self, body: MultipartBody) -> dict[str, Any]:
        """POST /api/experiments; returns the experiment and simulation ids."""
        headers = {"Content-Type": body.content_type}
        return self._call("POST", "/api/experiments", data=body, headers=headers)

    def get(self, path: str, **params: Any) -> Any:
        """GET a JSON resource."""
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def action(self, simulation_id: str, action: str) -> Any:
        """pause/resume/stop a simulation, or delete it."""
        if action == "delete":
            return self._call("DELETE", f"/api/simulations/{simulation_id}")
        return self._call("POST", f"/api/simulations/{simulation_id}/{action}")

    def download(
        self,
        path: str,
        dest: Path,
        on_start: Callable[[int | None], None] | None = None,
        on_read: Progress | None = None,
    ) -> Path:
        """Stream a binary resource to `dest` (written whole or not at all)."""
        partial = dest.with_name(f".{dest.name}.part")
        try:
            with self._request("GET", path, stream=True) as resp, partial.open("wb") as fh:
                size = resp.headers.get("Content-Length")
                if on_start:
                    on_start(int(size) if size and size.isdigit() else None)
                for chunk in resp.iter_content(CHUNK):
                    fh.write(chunk)
                    if on_read:
                        on_read(len(chunk))
            partial.replace(dest)
        finally:
            partial.unlink(missing_ok=True)
        return dest

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._request(method, path, **kwargs) as resp:
            return resp.json() if resp.content else None

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        requests = _requests()
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers |= kwargs.pop("headers", {})
        try:
            resp = requests.request(
                method, self.base + path, headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.ConnectionError as exc:
            raise InfraError(
                f"cannot reach NN Tracker at {self.base}: is `nntracker up` running? "
                "(NNT_URL sets another address)"
            ) from exc
        except requests.Timeout as exc:
            raise InfraError(
                f"NN Tracker at {self.base} did not answer within {self.timeout:g}s; try again"
            ) from exc
        except requests.RequestException as exc:
            raise InfraError(f"request to {self.base}{path} failed: {exc}") from exc
        if resp.status_code >= 400:
            raise InfraError(_describe(resp))
        return resp


HINTS = {
    401: "run `nntracker login USERNAME` (or set NNT_TOKEN to a token from your account page)",
    403: "this needs an administrator's account",
    404: "`nntracker ls` lists the simulations you can use",
    413: "the upload is too large for the server",
    429: "wait, then try again",
    503: "the server's Kafka is not answering; try again when `nntracker up` is healthy",
}


def _describe(resp: requests.Response) -> str:
    """Turn an error response into a readable, per-field message with the fix."""
    hint = HINTS.get(resp.status_code, "")
    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip()
        text = "" if text.lstrip().startswith("<") else text[:300]  # an HTML error page
        return f"HTTP {resp.status_code} {resp.reason}{': ' + text if text else ''}" + (
            f"\n  fix: {hint}" if hint else ""
        )
    detail = body.get("detail", body) if isinstance(body, dict) else body
    out = f"HTTP {resp.status_code}: {detail}"
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, dict):
        out += "\n" + "\n".join(f"  {field}: {message}" for field, message in errors.items())
        hint = hint or "correct the fields above and run the command again"
    return out + (f"\n  fix: {hint}" if hint else "")


def default_client(port: int) -> ApiClient:
    """Client for the local stack (NNT_URL: another server), with NNT_TOKEN when set."""
    base = os.environ.get("NNT_URL", f"http://127.0.0.1:{port}")
    return ApiClient(base, os.environ.get("NNT_TOKEN"))
