"""The FastAPI application: JSON API under ``/api``, web UI at ``/``, health at the root."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client

from fleetbatch.api import errors
from fleetbatch.api.auth import TokenAuth
from fleetbatch.api.context import HERE, ApiContext, templates
from fleetbatch.api.guard import Guard
from fleetbatch.api.headers import (
    SecurityHeaders,
    inline_handler_hashes,
    page_policy,
    security_headers,
)
from fleetbatch.api.routes import (
    batches,
    codec,
    control,
    docs,
    events,
    health,
    items,
    pages,
    reports,
)
from fleetbatch.config import Settings
from fleetbatch.stack import open_store, temporal_client
from fleetbatch.store import Store

log = logging.getLogger(__name__)

TITLE = "fleetbatch"
VERSION = "0.1.0"
DESCRIPTION = (
    "Upload files to a pipeline (vehicle: VINs and the command to send them; enrich: "
    "users to enrich, with result files), then follow and steer the batches that run them. "
    "Every /api route needs `Authorization: Bearer <token>`: a viewer token reads, an "
    "operator token also uploads and steers."
)


def create_app(
    settings: Settings, *, store: Store | None = None, client: Client | None = None
) -> FastAPI:
    """The app. Given a store and a client (``fleetbatch dev``, tests) it uses them;
    otherwise it opens both on start-up and closes them on shutdown.

    Raises:
        ConfigError: no tokens are configured outside development.
    """
    auth = TokenAuth(settings)
    if auth.open_access:
        log.warning("no API tokens configured: open access (development only)")

    given = (
        ApiContext(settings, store, client, auth, templates())
        if store is not None and client is not None
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if given is not None:
            yield  # set below already
            return
        async with contextlib.AsyncExitStack() as owned:
            used_store = await owned.enter_async_context(open_store(settings))
            used_client = await owned.enter_async_context(
                temporal_client(settings, start_embedded=False)
            )
            app.state.context = ApiContext(settings, used_store, used_client, auth, templates())
            yield

    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by routes/docs.py: from this site, behind auth in production.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    if given is not None:  # set now: ASGI test transports run no lifespan
        app.state.context = given
    errors.install(app)
    for module in (health, batches, items, control, reports, events, pages, docs, codec):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.mount(docs.ASSETS_URL, StaticFiles(directory=docs.ASSETS), name="docs-assets")
    # The last added runs first: headers go on every answer, the guard's included.
    app.add_middleware(Guard)
    policy = page_policy(*inline_handler_hashes(HERE / "templates"))
    production = settings.environment != "development"
    app.add_middleware(SecurityHeaders, policy=policy, production=production)
    app.state.security_headers = security_headers("/", policy=policy, production=production)
    return app
