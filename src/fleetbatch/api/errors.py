"""fleetbatch's errors as HTTP answers: JSON ``{"detail": …}`` for the API, a page for the UI."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match
from temporalio.service import RPCError

from fleetbatch.api.deps import LoginRequired
from fleetbatch.errors import (
    BatchConflictError,
    BatchNotFoundError,
    ConfigError,
    FleetbatchError,
    InputFileError,
    ItemNotFoundError,
    NoValidRowsError,
    TemporalUnavailableError,
    UnknownCommandError,
    UnknownPipelineError,
    UploadTooLargeError,
)

STATUS_OF: list[tuple[type[FleetbatchError], int]] = [
    (UploadTooLargeError, status.HTTP_413_CONTENT_TOO_LARGE),
    (InputFileError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (NoValidRowsError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (UnknownPipelineError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (UnknownCommandError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (ConfigError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (BatchNotFoundError, status.HTTP_404_NOT_FOUND),
    (ItemNotFoundError, status.HTTP_404_NOT_FOUND),
    (BatchConflictError, status.HTTP_409_CONFLICT),
    (TemporalUnavailableError, status.HTTP_503_SERVICE_UNAVAILABLE),
]
"""Most specific first."""


def status_of(exc: FleetbatchError) -> int:
    """The HTTP status of a fleetbatch error."""
    return next((code for kind, code in STATUS_OF if isinstance(exc, kind)), 500)


def describe(exc: RequestValidationError) -> str:
    """The first problem of a request, as one line: where, then what."""
    first = exc.errors()[0]
    where, *path = [str(part) for part in first["loc"]] or ["request"]
    name = ".".join(path)
    return f"{where} {name!r}: {first['msg']}" if name else f"{where}: {first['msg']}"


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    """Every method some route answers at the request's path: Starlette's own 405 names
    only the first route's (``GET /api/batches`` and ``POST`` are two routes)."""
    allowed = [
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]
    return ", ".join(allowed)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def _answer(
    request: Request, code: int, detail: str, headers: Mapping[str, str] | None
) -> Response:
    if _is_api(request) or not hasattr(request.app.state, "context"):
        return JSONResponse({"detail": detail}, code, dict(headers or {}))
    context = request.app.state.context
    return context.templates.TemplateResponse(  # type: ignore[no-any-return]
        request,
        "error.html",
        {"code": code, "detail": detail},
        status_code=code,
        headers=dict(headers or {}),
    )


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    async def fleetbatch_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FleetbatchError)
        return _answer(request, status_of(exc), str(exc), None)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = exc.headers
        if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return _answer(request, exc.status_code, str(exc.detail), headers)

    async def login_required(request: Request, exc: Exception) -> Response:
        return RedirectResponse(f"/login?next={request.url.path}", status.HTTP_303_SEE_OTHER)

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _answer(request, status.HTTP_422_UNPROCESSABLE_CONTENT, describe(exc), None)

    async def internal_error(request: Request, exc: Exception) -> Response:
        # Sent from outside every middleware: the security headers are added here.
        headers: dict[str, str] = getattr(request.app.state, "security_headers", {})
        return JSONResponse({"detail": "internal server error"}, 500, headers)

    async def temporal_error(request: Request, exc: Exception) -> Response:
        # Temporal refused or did not answer (a full query buffer, an outage): the
        # request may work later, which is what 503 says; a 500 would blame the API.
        assert isinstance(exc, RPCError)
        detail = f"Temporal did not answer: {exc.message}"
        return _answer(request, status.HTTP_503_SERVICE_UNAVAILABLE, detail, None)

    app.add_exception_handler(Exception, internal_error)
    app.add_exception_handler(RPCError, temporal_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(FleetbatchError, fleetbatch_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(LoginRequired, login_required)
