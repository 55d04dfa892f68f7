"""What every request passes before a route sees it: the caller, then the body's size.

FastAPI reads a route's JSON body before it solves the route's dependencies, so a
token checked by a dependency alone is checked only after the whole body was read
(a 200 MB body to ``/cancel`` without a token took 500 MiB, then got 401). Here,
``/api`` requests are authenticated from their headers first, and every body except
a streamed upload's is read only up to ``api_max_body_bytes``, then handed on.
Uploads keep their own, larger limit (``api_max_upload_bytes``), counted as they
stream (``api/uploads.py``), and so does the codec server (``routes/codec.py``).
"""

from __future__ import annotations

from fastapi import HTTPException, status
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleetbatch.api.context import ApiContext
from fleetbatch.api.deps import authenticate
from fleetbatch.api.uploads import is_upload

PROTECTED = "/api/"
"""Every route under this prefix needs a token (the routes check roles on their own)."""
OWN_LIMITS = "/codec/"
"""Routes that authenticate before they read and bound their bodies themselves: the
codec server (a chunk's payloads exceed the JSON limit; its CORS preflight carries
no token, and its refusals carry CORS headers the Temporal UI needs to read them)."""


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        {"detail": f"request body is larger than the limit of {limit:,} bytes"},
        status.HTTP_413_CONTENT_TOO_LARGE,
    )


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind: bytes = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return False


class Guard:
    """Authenticates ``/api`` requests and bounds bodies before the app reads them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context: ApiContext = scope["app"].state.context
        if scope["path"].startswith(PROTECTED):
            try:
                authenticate(context, HTTPConnection(scope))
            except HTTPException as exc:
                answer = JSONResponse({"detail": exc.detail}, exc.status_code, exc.headers)
                await answer(scope, receive, send)
                return
        if is_upload(scope["method"], scope["path"]) or scope["path"].startswith(OWN_LIMITS):
            await self.app(scope, receive, send)
            return
        limit = context.settings.api_max_body_bytes
        declared = HTTPConnection(scope).headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        try:
            body = await _read(receive, limit)
        except _Disconnected:
            return  # nobody is left to answer
        if body is None:
            await _too_large(limit)(scope, receive, send)
            return
        if body and _is_json(scope) and not _utf8(body):
            answer = JSONResponse(
                {"detail": "body: not UTF-8; a JSON body must be UTF-8 encoded"},
                status.HTTP_422_UNPROCESSABLE_CONTENT,
            )
            await answer(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


class _Disconnected(Exception):
    """The client went away before its body was read."""


async def _read(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None past ``limit`` bytes (the rest is never read)."""
    parts: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected()
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body in one message, then the client's own messages (its disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
