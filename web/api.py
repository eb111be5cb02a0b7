"""The project's NinjaAPI: mounts each app's router; OpenAPI at /api/docs, served offline."""

from __future__ import annotations

from ninja import NinjaAPI, Swagger

from web import errors
from web.accounts.api import router as accounts_router
from web.console.api import router as console_router
from web.experiments.api import router as experiment_form_router
from web.simulations.api import router as simulations_router
from web.simulations.batch_api import router as batch_router
from web.simulations.diagnoses_api import router as diagnoses_router
from web.simulations.sdk_api import router as sdk_router

# Swagger UI's files come from the installed django-ninja ("ninja" in INSTALLED_APPS), and its
# online spec validator is off: /api/docs makes no request beyond this server.
api = NinjaAPI(
    title="NN Tracker API",
    version="1",
    urls_namespace="api",
    docs=Swagger(settings={"validatorUrl": None}),
)
api.add_router("/", accounts_router)
api.add_router("/", simulations_router)
api.add_router("/", batch_router)
api.add_router("/", diagnoses_router)
api.add_router("/", sdk_router)
api.add_router("/", experiment_form_router)
api.add_router("/admin", console_router)
errors.install(api)
