"""The API's docs, Swagger UI at ``/docs`` and ReDoc at ``/redoc``, and its spec at
``/openapi.json``: all served from this site (the bundles come from the
``fastapi-offline`` wheel, no CDN), and in production only to a logged-in user or a
bearer token."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from fleetbatch.api.deps import DocsReader

router = APIRouter(include_in_schema=False)

ASSETS = Path(fastapi_offline.__file__).parent / "static"
"""swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png."""
ASSETS_URL = "/docs/assets"
SPEC_URL = "/openapi.json"


def _page(title: str, head: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        f'<link rel="icon" href="{ASSETS_URL}/favicon.png">{head}</head>'
        f"<body>{body}</body></html>\n"
    )


@router.get("/openapi.json")
async def openapi_spec(request: Request, _: DocsReader) -> JSONResponse:
    spec: dict[str, Any] = request.app.openapi()
    return JSONResponse(spec)


@router.get("/docs")
async def swagger_ui(request: Request, _: DocsReader) -> HTMLResponse:
    return _page(
        f"{request.app.title} API",
        f'<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css">',
        f'<div id="swagger-ui" data-spec="{SPEC_URL}"></div>'
        f'<script src="{ASSETS_URL}/swagger-ui-bundle.js"></script>'
        '<script src="/static/swagger-init.js"></script>',
    )


@router.get("/redoc")
async def redoc(request: Request, _: DocsReader) -> HTMLResponse:
    return _page(
        f"{request.app.title} API",
        "",
        f'<redoc spec-url="{SPEC_URL}"></redoc>'
        f'<script src="{ASSETS_URL}/redoc.standalone.js"></script>',
    )
