"""Links into the Temporal Web UI."""

from __future__ import annotations

from urllib.parse import quote

from fleetbatch.config import Settings


def workflow_url(settings: Settings, workflow_id: str | None) -> str | None:
    """A workflow's page in the Temporal Web UI, when the UI and the workflow are known."""
    base = settings.temporal_web_url
    if not base or not workflow_id:
        return None
    namespace = quote(settings.temporal_namespace, safe="")
    return f"{base.rstrip('/')}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"
