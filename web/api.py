"""The project's NinjaAPI: mounts each app's router; OpenAPI at /api/docs."""

from __future__ import annotations

from ninja import NinjaAPI

from web import errors
from web.accounts.api import router as accounts_router
from web.simulations.api import router as simulations_router

api = NinjaAPI(title="NN Tracker API", version="1", urls_namespace="api")
api.add_router("/", accounts_router)
api.add_router("/", simulations_router)
errors.install(api)
