"""Liveness and readiness, for load balancers and orchestrators; no token needed."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from fleetbatch.api.deps import Context
from fleetbatch.api.schemas import Health
from fleetbatch.errors import TemporalUnavailableError
from fleetbatch.services.submission import check_namespace

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(context: Context) -> JSONResponse:
    """The database and Temporal both answer; 503 with the failing check otherwise."""
    checks: dict[str, str] = {}
    try:
        async with context.store.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means not ready
        checks["database"] = f"{type(exc).__name__}: {exc}"[:300]
    try:
        await check_namespace(context.client)
        checks["temporal"] = "ok"
    except TemporalUnavailableError as exc:
        checks["temporal"] = str(exc)
    ready = all(v == "ok" for v in checks.values())
    body = Health(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), 200 if ready else 503)
