"""Dependencies of the routes, as ``Annotated`` aliases: the context and the caller.

Permission checks live here and nowhere else: a route asks for ``Viewer`` or
``Operator`` and gets a principal, or the request ends with 401 or 403. The guard
(``api/guard.py``) calls ``authenticate`` for every ``/api`` request before a route
reads its body, so a stranger's body is never read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from fleetbatch.api.auth import OPEN_ACCESS, Principal
from fleetbatch.api.context import ApiContext

SESSION_COOKIE = "fleetbatch_session"
"""The web UI's session after a login (HttpOnly, SameSite=Strict, Secure outside
development): a value standing for the token, never the token itself."""


class LoginRequired(Exception):
    """A web UI page was asked for without a valid session: go to the login page."""


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(get_context)]


_bearer = HTTPBearer(auto_error=False, description="a viewer or an operator token")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
"""For the OpenAPI spec's security scheme; ``authenticate`` reads the header itself."""


def authenticate(context: ApiContext, connection: HTTPConnection) -> Principal:
    """The caller: a bearer token, else the web UI's session cookie.

    Reads headers only, never the body.

    Raises:
        HTTPException: 401 for no credentials, another Authorization scheme, or a token
            or session that is not valid.
    """
    if context.auth.open_access:
        return OPEN_ACCESS
    header = connection.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        valid = scheme.lower() == "bearer" and token.strip()
        principal = context.auth.principal(token.strip()) if valid else None
    else:
        session = connection.cookies.get(SESSION_COOKIE)
        principal = context.auth.session_principal(session)
        if principal is None and session is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing bearer token",
                {"WWW-Authenticate": 'Bearer realm="fleetbatch"'},
            )
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid bearer token",
            {"WWW-Authenticate": 'Bearer realm="fleetbatch", error="invalid_token"'},
        )
    return principal


def current_principal(request: Request, context: Context, _: Bearer) -> Principal:
    """The caller, or 401: no token, or one that is not configured."""
    return authenticate(context, request)


def require_operator(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The caller if an operator, or 403."""
    if not principal.is_operator:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this needs the operator role; your token has the {principal.role.label} role",
        )
    return principal


def page_principal(request: Request, context: Context) -> Principal:
    """The caller of a web UI page; without a valid session, the login page instead."""
    principal = context.auth.session_principal(request.cookies.get(SESSION_COOKIE))
    if principal is None:
        raise LoginRequired()
    return principal


def docs_principal(request: Request, context: Context) -> Principal | None:
    """The reader of the API docs and spec: anyone in development; in production a
    valid bearer token or session (a browser without one goes to the login page)."""
    if context.settings.environment == "development":
        return None
    anonymous = "authorization" not in request.headers and SESSION_COOKIE not in request.cookies
    if anonymous and request.url.path != "/openapi.json":
        raise LoginRequired()
    return authenticate(context, request)


Viewer = Annotated[Principal, Depends(current_principal)]
Operator = Annotated[Principal, Depends(require_operator)]
PageUser = Annotated[Principal, Depends(page_principal)]
DocsReader = Annotated[Principal | None, Depends(docs_principal)]
