"""Webhooks: a batch's notifications POSTed as signed JSON.

The body is signed with HMAC-SHA256 under the configured secret
(``webhook_secret``); the receiver checks ``X-Fleetbatch-Signature:
sha256=<hex>`` against the raw body. A receiver that is down or answers 5xx, 408
or 429 is retried by Temporal with backoff; any other 4xx is final.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from fleetbatch.activities.types import INVALID_INPUT, NOTIFY, Notice

SIGNATURE_HEADER = "X-Fleetbatch-Signature"
_RETRIED = {408, 429}


def signature(secret: str, body: bytes) -> str:
    """The header's value for ``body``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Notifier:
    """Sends notices; built with the secret that signs them."""

    def __init__(self, secret: str | None, timeout_seconds: float = 10.0) -> None:
        self._secret = secret
        self._timeout = timeout_seconds

    @activity.defn(name=NOTIFY)
    async def notify(self, notice: Notice) -> None:
        """POST the notice to its URL, signed; raise (and be retried) until it is taken."""
        if self._secret is None:
            raise ApplicationError(
                "no webhook_secret configured: notices are never sent unsigned",
                type=INVALID_INPUT,
                non_retryable=True,
            )
        body = json.dumps(
            {"batch_id": notice.batch_id, "event": notice.event, **notice.details},
            sort_keys=True,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self._secret, body),
            "X-Fleetbatch-Event": notice.event,
        }
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            response = await client.post(notice.url, content=body, headers=headers)
        if response.is_success:
            return
        final = response.status_code < 500 and response.status_code not in _RETRIED
        raise ApplicationError(
            f"webhook answered {response.status_code}",
            type=INVALID_INPUT if final else "WebhookUnavailable",
            non_retryable=final,
        )
