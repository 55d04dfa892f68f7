"""An uploaded file, streamed from the request into the same intake the CLI uses.

The multipart body is read chunk by chunk; its size is counted on the way and
the upload ends with ``UploadTooLargeError`` the moment it passes the limit. The
file part goes to a spooled temporary file (memory up to 1 MiB, then disk), which
the intake then reads line by line: memory stays flat at any file size.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from fleetbatch.api.context import ApiContext
from fleetbatch.api.schemas import UploadOptions
from fleetbatch.errors import InputFileError, UploadTooLargeError
from fleetbatch.services.submission import rollout_for, submit_file
from fleetbatch.store import UploadResult

FILE_FIELD = "file"

UPLOAD_PATHS = re.compile(r"/api/batches(/[^/]+/files)?|/upload")
"""The routes that stream an upload (POST): their body has its own limit, counted here."""


def is_upload(method: str, path: str) -> bool:
    """Whether a request is an upload, whose body this module reads and limits."""
    return method == "POST" and UPLOAD_PATHS.fullmatch(path) is not None


def _option_schemas() -> dict[str, Any]:
    """Each text field as UploadOptions checks it (its type and bounds), never null."""
    found: dict[str, Any] = {}
    for name, schema in UploadOptions.model_json_schema()["properties"].items():
        given = next(s for s in schema["anyOf"] if s.get("type") != "null")
        found[name] = {**given, "description": schema.get("description", name)}
    return found


OPENAPI_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {
                        FILE_FIELD: {
                            "type": "string",
                            "format": "binary",
                            "description": "CSV or NDJSON: a 'vin' per row (vehicle), "
                            "or 'user_id', 'email', 'country' (enrich)",
                        },
                        **_option_schemas(),
                    },
                }
            }
        },
    }
}
"""The upload body as OpenAPI shows it (the route reads the stream itself)."""


def _too_large(limit: int) -> UploadTooLargeError:
    return UploadTooLargeError(f"upload is larger than the limit of {limit:,} bytes")


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise _too_large(limit)
        yield chunk


def _options(fields: dict[str, str], batch_id: str | None) -> UploadOptions:
    if batch_id is not None:
        fields = {**fields, "batch_id": batch_id}
    try:
        return UploadOptions.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputFileError(f"field {where!r}: {first['msg']}") from None


async def read_upload(request: Request, limit: int) -> tuple[UploadFile, dict[str, str]]:
    """The file part and the text fields of a multipart upload.

    Raises:
        UploadTooLargeError: the body is, or says it is, larger than ``limit`` bytes.
        InputFileError: not a multipart body, or no file part in it.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InputFileError(f"send the file as multipart/form-data in the field {FILE_FIELD!r}")
    parser = MultiPartParser(request.headers, _limited(request, limit), max_files=1, max_fields=30)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InputFileError(f"unreadable multipart body: {exc.message}") from None
    upload = form.get(FILE_FIELD)
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str) and v.strip()}
    if not isinstance(upload, UploadFile):
        await form.close()
        raise InputFileError(
            f"no file in the upload: send it in the multipart field {FILE_FIELD!r}"
        )
    return upload, fields


async def upload_file(
    context: ApiContext, request: Request, batch_id: str | None = None
) -> UploadResult:
    """Stream the request's file into a new batch, or into ``batch_id``.

    Raises:
        the errors of ``read_upload`` and of ``submit_file``.
    """
    upload, fields = await read_upload(request, context.settings.api_max_upload_bytes)
    try:
        options = _options(fields, batch_id).model_dump()
        step = {"command": options.pop("command"), "format": options.pop("format")}
        windows = options.pop("windows")
        rollout = rollout_for(
            context.settings,
            policy=options.pop("policy"),
            waves=options.pop("waves"),
            start_at=options.pop("start_at"),
            end_at=options.pop("end_at"),
            on_end=options.pop("on_end"),
            windows=[w for w in (windows or "").split(";") if w.strip()],
            gate_failures=options.pop("gate_failures"),
            gate_min_items=options.pop("gate_min_items"),
            approve_waves=bool(options.pop("approve_waves")),
            on_gate_failure=options.pop("on_gate_failure"),
            webhook_url=options.pop("webhook_url"),
            ramp=options.pop("ramp"),
            overshoot=options.pop("overshoot"),
            max_failures=options["max_failures"],
        )
        return await submit_file(
            context.store,
            context.client,
            context.settings,
            upload.file,
            filename=upload.filename or "upload.csv",
            options=step,
            rollout=rollout,
            **options,
        )
    finally:
        await upload.close()
