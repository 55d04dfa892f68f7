"""Dependencies of the routes, as ``Annotated`` aliases: the context and the caller.

Permission checks live here and nowhere else: a route asks for ``Viewer`` or
``Operator`` and gets a principal, or the request ends with 401 or 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fleetbatch.api.auth import Principal
from fleetbatch.api.context import ApiContext

TOKEN_COOKIE = "fleetbatch_token"
"""The web UI keeps the token a user logged in with here (HttpOnly, SameSite=Strict)."""


class LoginRequired(Exception):
    """A web UI page was asked for without a valid token: go to the login page."""


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(get_context)]


_bearer = HTTPBearer(auto_error=False, description="a viewer or an operator token")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _token(request: Request, bearer: HTTPAuthorizationCredentials | None) -> str | None:
    """The bearer token; "" for another Authorization scheme; else the UI's cookie."""
    if bearer is not None:
        return bearer.credentials
    if "authorization" in request.headers:
        return ""
    return request.cookies.get(TOKEN_COOKIE)


def current_principal(request: Request, context: Context, bearer: Bearer) -> Principal:
    """The caller, or 401: no token, or one that is not configured."""
    token = _token(request, bearer)
    principal = context.auth.principal(token)
    if principal is not None:
        return principal
    if token is None:
        detail, challenge = "missing bearer token", 'Bearer realm="fleetbatch"'
    else:
        detail = "invalid bearer token"
        challenge = 'Bearer realm="fleetbatch", error="invalid_token"'
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail, {"WWW-Authenticate": challenge})


def require_operator(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The caller if an operator, or 403."""
    if not principal.is_operator:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this needs the operator role; your token has the {principal.role.label} role",
        )
    return principal


def page_principal(request: Request, context: Context) -> Principal:
    """The caller of a web UI page; without a valid token, the login page instead."""
    principal = context.auth.principal(request.cookies.get(TOKEN_COOKIE))
    if principal is None:
        raise LoginRequired()
    return principal


Viewer = Annotated[Principal, Depends(current_principal)]
Operator = Annotated[Principal, Depends(require_operator)]
PageUser = Annotated[Principal, Depends(page_principal)]
