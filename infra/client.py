"""A small REST client of the NN Tracker API for the CLI (token auth)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import requests

from infra.settings import InfraError


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

    def submit(self, config: dict[str, Any], model: Path, datasets: dict[str, Path]) -> dict[str, Any]:
        """POST /api/experiments with the files; returns experiment and simulation ids."""
        files = {"model": (model.name, model.read_bytes(), "application/json")}
        for field, path in datasets.items():
            files[f"dataset_{field}"] = (path.name, path.read_bytes(), "application/octet-stream")
        return self._call("POST", "/api/experiments", data={"config": json.dumps(config)}, files=files)

    def get(self, path: str, **params: Any) -> Any:
        """GET a JSON resource."""
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def action(self, simulation_id: str, action: str) -> Any:
        """pause/resume/stop a simulation, or delete it."""
        if action == "delete":
            return self._call("DELETE", f"/api/simulations/{simulation_id}")
        return self._call("POST", f"/api/simulations/{simulation_id}/{action}")

    def download(self, path: str, dest: Path) -> Path:
        """Stream a binary resource to a file."""
        with self._request("GET", path, stream=True) as resp, dest.open("wb") as fh:
            for chunk in resp.iter_content(1 << 16):
                fh.write(chunk)
        return dest

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._request(method, path, **kwargs) as resp:
            return resp.json() if resp.content else None

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            resp = requests.request(method, self.base + path, headers=headers, timeout=self.timeout, **kwargs)
        except requests.ConnectionError as exc:
            raise InfraError(f"cannot reach NN Tracker at {self.base}: is `nntracker up` running?") from exc
        if resp.status_code >= 400:
            raise InfraError(_describe(resp))
        return resp


def _describe(resp: requests.Response) -> str:
    """Turn an error response into a readable, per-field message."""
    try:
        body = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}: {resp.text[:300]}"
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, dict):
        return f"HTTP {resp.status_code}:\n" + "\n".join(f"  {k}: {v}" for k, v in errors.items())
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return f"HTTP {resp.status_code}: {detail}"


def default_client(port: int) -> ApiClient:
    """Client for the local stack, with the token from NNT_TOKEN when set."""
    base = os.environ.get("NNT_URL", f"http://127.0.0.1:{port}")
    return ApiClient(base, os.environ.get("NNT_TOKEN"))
