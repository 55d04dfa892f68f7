"""Security headers on every response: a content security policy, no sniffing, no
framing, no referrer.

The pages load their scripts, styles and images from this site only (``'self'``); an
inline event handler in a template runs only if its hash is in the policy, and the
hashes are taken from the templates when the app starts (``inline_handler_hashes``),
so a handler edited in a template keeps working and an injected one does not. Style
attributes are allowed (``style-src-attr``): the progress bar's width is one; no
``<style>`` element is.

The API docs (Swagger UI, ReDoc) are third-party bundles served from this site that
add ``<style>`` elements and, for ReDoc, a worker from a ``blob:`` URL: their pages
get a policy that allows exactly that, still with scripts from ``'self'`` only.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Iterable
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_PATHS = ("/docs", "/redoc")

_HANDLER = re.compile(r"""\son[a-z]+\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>(.*?)</script>", re.S | re.I)


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def inline_handler_hashes(templates: Path) -> tuple[list[str], list[str]]:
    """The CSP hashes of the inline event handlers and of the inline scripts in the
    templates (a browser hashes a handler's attribute value, entities decoded)."""
    handlers: set[str] = set()
    scripts: set[str] = set()
    for path in sorted(templates.glob("*.html")):
        text = path.read_text()
        for match in _HANDLER.finditer(text):
            handlers.add(_sha256(html.unescape(match.group(1) or match.group(2) or "")))
        for match in _INLINE_SCRIPT.finditer(text):
            if match.group(1).strip():
                scripts.add(_sha256(match.group(1)))
    return sorted(handlers), sorted(scripts)


def page_policy(handler_hashes: Iterable[str], script_hashes: Iterable[str]) -> str:
    """The policy of every response but the docs pages'."""
    handlers, scripts = list(handler_hashes), list(script_hashes)
    script_src = ["'self'", *scripts, *(["'unsafe-hashes'", *handlers] if handlers else [])]
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {' '.join(script_src)}",
            "style-src 'self'",
            "style-src-attr 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


DOCS_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src blob:",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)


def security_headers(path: str, *, policy: str, production: bool) -> dict[str, str]:
    """The headers every response to ``path`` carries."""
    headers = {
        "Content-Security-Policy": DOCS_POLICY if path in DOCS_PATHS else policy,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if production:  # served over HTTPS there (the session cookie is Secure)
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


class SecurityHeaders:
    """Adds the headers to every HTTP response the app sends (a route's own win)."""

    def __init__(self, app: ASGIApp, *, policy: str, production: bool) -> None:
        self.app = app
        self.policy = policy
        self.production = production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = security_headers(scope["path"], policy=self.policy, production=self.production)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in added.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)
