"""The codec server: Temporal's Web UI and CLI decode (and encode) payloads here.

Temporal's remote codec protocol: ``POST /codec/decode`` and ``POST /codec/encode``
take ``{"payloads": [...]}`` (a ``temporal.api.common.v1.Payloads`` message in
protobuf JSON: base64 ``data``, base64 ``metadata`` values) and answer the same
shape. Point a client at ``<api>/codec``: ``temporal workflow show --codec-endpoint
http://host:8000/codec --codec-auth 'Bearer TOKEN'``, or the UI's codec endpoint.

A viewer token may decode (it is the Web UI's read access); payloads that are not
encrypted pass through. A browser calls from the Temporal Web UI's origin, so the
routes answer CORS for the configured origins only
(``Settings.effective_codec_cors_origins``), with the headers the UI sends and
credentials (a UI configured to include them sends this site's session cookie).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException
from temporalio.api.common.v1 import Payload, Payloads

from fleetbatch.api.deps import Context, Viewer
from fleetbatch.api.schemas import problems
from fleetbatch.errors import CodecError
from fleetbatch.temporal.codec import codec_for

ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"
MAX_BODY_BYTES = 8 * 1024 * 1024
"""Four of Temporal's 2 MB payloads, base64-encoded."""


Base64 = Annotated[
    str, Field(pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
]
"""Standard base64 with its padding, as protobuf JSON writes bytes."""


class CodecPayload(BaseModel):
    """A ``temporal.api.common.v1.Payload`` in protobuf JSON."""

    model_config = ConfigDict(extra="forbid")

    metadata: dict[str, Base64] = Field(default_factory=dict, description="base64 values")
    data: Base64 = Field(default="", description="base64")


class CodecPayloads(BaseModel):
    """A ``temporal.api.common.v1.Payloads`` in protobuf JSON."""

    model_config = ConfigDict(extra="forbid")

    payloads: list[CodecPayload] = Field(default_factory=list)


def _cors(request: Request, response: Response) -> Response:
    """Let the browser show ``response`` to a page from an allowed origin; else, no
    CORS header at all (the browser then keeps the answer from the page)."""
    response.headers["Vary"] = "Origin"
    origin = request.headers.get("origin")
    settings = request.app.state.context.settings
    if origin is not None and origin in settings.effective_codec_cors_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
    return response


class CodecRoute(APIRoute):
    """A route whose every answer, errors included (a 401 the UI should show as
    such), carries the CORS headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                response = await handler(request)
            except HTTPException as exc:
                response = JSONResponse({"detail": exc.detail}, exc.status_code, exc.headers)
            return _cors(request, response)

        return answer


router = APIRouter(prefix="/codec", tags=["codec"], route_class=CodecRoute)
ERRORS = problems(400, 401, 413)
BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CodecPayloads"}}},
    }
}
"""The body, documented by hand: a declared body would be read before the token is
checked."""


async def _payloads(request: Request) -> list[Payload]:
    """The request's payloads; read only once the caller is authenticated (the body
    is not a parameter, so FastAPI leaves it to this)."""
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"request body is larger than the limit of {MAX_BODY_BYTES:,} bytes",
            )
    try:
        # The documented shape first (protobuf's parser takes ``null`` for a list);
        # then protobuf's own reading of it (base64, field names).
        CodecPayloads.model_validate_json(bytes(body))
        return list(json_format.Parse(bytes(body), Payloads()).payloads)
    except (ValidationError, json_format.ParseError) as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f'body: not {{"payloads": [...]}} ({exc})'
        ) from None


def _answer(payloads: Sequence[Payload]) -> Response:
    body = json_format.MessageToJson(Payloads(payloads=payloads), indent=None)
    return Response(body, media_type="application/json")


@router.post(
    "/decode",
    response_model=CodecPayloads,
    responses=ERRORS,
    openapi_extra=BODY,
)
async def decode(request: Request, context: Context, _: Viewer) -> Response:
    """Decrypt payloads (for Temporal's Web UI and CLI); others pass through."""
    payloads = await _payloads(request)
    codec = codec_for(context.settings)
    if codec is None:
        return _answer(payloads)
    try:
        return _answer(await codec.decode(payloads))
    except CodecError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None


@router.post(
    "/encode",
    response_model=CodecPayloads,
    responses=ERRORS,
    openapi_extra=BODY,
)
async def encode(request: Request, context: Context, _: Viewer) -> Response:
    """Encrypt payloads with the active key (a signal or start from the Web UI)."""
    payloads = await _payloads(request)
    codec = codec_for(context.settings)
    return _answer(payloads if codec is None else await codec.encode(payloads))


@router.options("/decode", include_in_schema=False)
@router.options("/encode", include_in_schema=False)
async def preflight(request: Request) -> Response:
    """CORS preflight: the configured origins may POST with the UI's headers."""
    origin = request.headers.get("origin")
    if origin not in request.app.state.context.settings.effective_codec_cors_origins:
        return JSONResponse(
            {"detail": f"origin {origin!r} may not call the codec server"},
            status.HTTP_403_FORBIDDEN,
            {"Vary": "Origin"},
        )
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.headers["Access-Control-Allow-Methods"] = "POST"
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = "600"
    return response
