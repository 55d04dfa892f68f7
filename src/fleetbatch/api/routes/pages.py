"""The web UI: server-rendered pages over the same views and services as the JSON API.

A browser cannot send a bearer header on navigation, so the login page gives it a
session (``api/auth.py``: a value standing for the token, not the token) in an
HttpOnly, SameSite=Strict cookie, Secure outside development, that the same checks read.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, RedirectResponse, Response

from fleetbatch.api.auth import Principal
from fleetbatch.api.context import HERE, ApiContext
from fleetbatch.api.deps import SESSION_COOKIE, Context, PageUser
from fleetbatch.api.errors import status_of
from fleetbatch.api.schemas import MAX_INT, UploadPublic
from fleetbatch.api.uploads import upload_file
from fleetbatch.api.views import (
    batch_detail,
    batch_rows,
    failure_reasons,
    item_detail,
    item_page,
    timeline_chart,
)
from fleetbatch.domain import ItemStatus
from fleetbatch.errors import FleetbatchError
from fleetbatch.pipelines import all_pipelines, get_pipeline
from fleetbatch.services import control
from fleetbatch.services.outputs import output_files
from fleetbatch.services.submission import DEFAULT_PIPELINE

router = APIRouter(include_in_schema=False)
PAGE = 50
ACTIONS = ("pause", "resume", "cancel")
REDRIVABLE = [s.value for s in control.REDRIVABLE]
ERROR_MAX = 2000
"""Longest error text a filter or a redrive takes."""
REASONS_MAX = 1000
"""Distinct reasons the confirmation step looks through for the count."""
FAVICON = HERE / "static" / "favicon.svg"


def _render(
    request: Request, name: str, values: dict[str, Any], code: int = status.HTTP_200_OK
) -> Response:
    context = request.app.state.context
    return context.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, name, values, status_code=code
    )


def _local(path: str) -> str:
    """Only paths on this site: no open redirect through ``next``."""
    return path if path.startswith("/") and not path.startswith("//") else "/"


@router.get("/favicon.ico")
async def favicon() -> Response:
    """Browsers ask for /favicon.ico whatever the page links: the same SVG."""
    return FileResponse(FAVICON, media_type="image/svg+xml")


@router.get("/login")
async def login_page(request: Request, next: str = "/") -> Response:
    return _render(request, "login.html", {"next": _local(next), "error": None})


@router.post("/login")
async def login(request: Request, context: Context) -> Response:
    form = await request.form()
    token, target = str(form.get("token", "")), _local(str(form.get("next", "/")))
    session = context.auth.open_session(token)
    if session is None:
        values = {"next": target, "error": "invalid token"}
        return _render(request, "login.html", values, status.HTTP_401_UNAUTHORIZED)
    response = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=int(context.settings.api_session_seconds),
        httponly=True,
        samesite="strict",
        secure=context.settings.environment != "development",
    )
    return response


@router.post("/logout")
async def logout(context: Context) -> Response:
    response = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    secure = context.settings.environment != "development"
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict", secure=secure)
    return response


@router.get("/")
async def batches_page(
    request: Request,
    context: Context,
    user: PageUser,
    status_: Annotated[str, Query(alias="status")] = "",
    label: str = "",
    pipeline: str = "",
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> Response:
    found, total = await context.store.batches.list(
        PAGE, offset, status=status_ or None, label=label or None, pipeline=pipeline or None
    )
    return _render(
        request,
        "batches.html",
        {
            "user": user,
            "rows": await batch_rows(context, found),
            "total": total,
            "offset": offset,
            "page": PAGE,
            "status": status_,
            "label": label,
            "pipeline": pipeline,
            "pipelines": [p.name for p in all_pipelines()],
            "labels": [*sorted(context.settings.command_types), "enrich"],
        },
    )


def _upload_values(context: ApiContext, user: Principal, **more: Any) -> dict[str, Any]:
    return {
        "user": user,
        "commands": sorted(context.settings.command_types),
        "pipelines": all_pipelines(),
        "default_pipeline": DEFAULT_PIPELINE,
        **more,
    }


@router.get("/upload")
async def upload_page(request: Request, context: Context, user: PageUser) -> Response:
    return _render(request, "upload.html", _upload_values(context, user, error=None))


@router.post("/upload")
async def upload(request: Request, context: Context, user: PageUser) -> Response:
    if not user.is_operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "uploading needs the operator role")
    try:
        result = await upload_file(context, request)
    except FleetbatchError as exc:
        values = _upload_values(context, user, error=str(exc))
        return _render(request, "upload.html", values, status_of(exc))
    values = _upload_values(context, user, result=UploadPublic.model_validate(result))
    return _render(request, "uploaded.html", values, status.HTTP_201_CREATED)


@router.get("/batches/{batch_id}")
async def batch_page(
    request: Request,
    batch_id: str,
    context: Context,
    user: PageUser,
    status_: Annotated[str, Query(alias="status")] = "",
    key: Annotated[str, Query(max_length=200)] = "",
    error: Annotated[str, Query(max_length=ERROR_MAX)] = "",
    after: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> Response:
    detail = await batch_detail(context, batch_id)
    chosen = status_ if status_ in {s.value for s in ItemStatus} else None
    items = await item_page(
        context, batch_id, after=after, limit=PAGE, status=chosen, key=key or None, error=error
    )
    return _render(
        request,
        "batch.html",
        {
            "user": user,
            "batch": detail,
            "items": items,
            "status": chosen or "",
            "key": key,
            "error": error,
            "key_name": get_pipeline(detail.pipeline).key_name,
            "outputs": await output_files(context.store, context.settings, batch_id),
            "statuses": [s.value for s in ItemStatus],
            "reasons": await failure_reasons(context, batch_id),
            "chart": await timeline_chart(context, batch_id),
            "redrivable": REDRIVABLE,
        },
    )


def _redrive_choice(statuses: list[str], error: str) -> tuple[list[str], str | None]:
    """The statuses (validated as the service does) and the reason of a redrive.

    Raises:
        ConfigError: a status that cannot be redriven.
    """
    if len(error) > ERROR_MAX:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "error text too long")
    chosen = control.redrive_statuses(list(dict.fromkeys(statuses)))
    return [s.value for s in chosen], error or None


@router.get("/batches/{batch_id}/redrive")
async def redrive_page(
    request: Request,
    batch_id: str,
    context: Context,
    user: PageUser,
    status_: Annotated[list[str], Query(alias="status")] = ["failed"],  # noqa: B006
    error: Annotated[str, Query(max_length=ERROR_MAX)] = "",
) -> Response:
    """The confirmation step: what a redrive would run again, and the button that does."""
    if not user.is_operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "redrive needs the operator role")
    statuses, reason = _redrive_choice(status_, error)
    detail = await batch_detail(context, batch_id)
    if reason is None:
        count = sum(detail.progress.counts.get(s, 0) for s in statuses)
    else:
        found = await failure_reasons(context, batch_id, limit=REASONS_MAX)
        count = sum(r.n for r in found if r.error == reason and r.status in statuses)
    values = {"user": user, "batch": detail, "statuses": statuses, "error": reason}
    return _render(request, "redrive.html", {**values, "count": count})


@router.post("/batches/{batch_id}/redrive")
async def redrive(request: Request, batch_id: str, context: Context, user: PageUser) -> Response:
    if not user.is_operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "redrive needs the operator role")
    form = await request.form()
    statuses, reason = _redrive_choice(
        [str(s) for s in form.getlist("status")], str(form.get("error", ""))
    )
    await control.redrive(
        context.client, context.settings, context.store, batch_id, statuses, reason
    )
    return RedirectResponse(f"/batches/{quote(batch_id, safe='')}", status.HTTP_303_SEE_OTHER)


@router.get("/batches/{batch_id}/items/{key}")
async def item_history_page(
    request: Request, batch_id: str, key: str, context: Context, user: PageUser
) -> Response:
    item = await item_detail(context, batch_id, key)
    batch = await context.store.batches.get(batch_id)
    key_name = get_pipeline(batch.pipeline).key_name
    return _render(request, "item.html", {"user": user, "item": item, "key_name": key_name})


@router.post("/batches/{batch_id}/approve/{wave}")
async def approve_wave(batch_id: str, wave: int, context: Context, user: PageUser) -> Response:
    """The batch page's Approve button: the wave it showed as waiting starts."""
    if not user.is_operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "approve needs the operator role")
    await control.approve_wave(context.client, context.store, batch_id, wave)
    return RedirectResponse(f"/batches/{quote(batch_id, safe='')}", status.HTTP_303_SEE_OTHER)


@router.post("/batches/{batch_id}/{action}")
async def batch_action(
    request: Request, batch_id: str, action: str, context: Context, user: PageUser
) -> Response:
    if action not in ACTIONS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no action {action!r}")
    if not user.is_operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{action} needs the operator role")
    client, store = context.client, context.store
    if action == "pause":
        await control.pause(client, store, batch_id)
    elif action == "resume":
        await control.resume(client, store, batch_id)
    else:
        await control.cancel(client, store, batch_id, "cancelled in the web UI")
    return RedirectResponse(f"/batches/{quote(batch_id, safe='')}", status.HTTP_303_SEE_OTHER)
