"""The content security policy in a real browser: the pages, Swagger UI and ReDoc
work under it and the browser reports no violation; an injected inline script would
not run."""

from __future__ import annotations

from typing import Any

from playwright.async_api import ConsoleMessage, Dialog, Page, expect
from test_browser import browser, site  # noqa: F401 - the fixtures

from api_support import api_vins

REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
"""ReDoc's "API docs by Redocly" badge: the policy blocks it, nothing leaves the site."""


def _violations(page: Page) -> list[str]:
    seen: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            seen.append(message.text)

    page.on("console", note)
    return seen


async def test_the_batch_page_runs_under_the_policy(site: Any) -> None:  # noqa: F811
    async with site(latency_ms=150, chunk_size=4, max_in_flight=1) as (url, h, page):
        violations = _violations(page)
        await h.submit(api_vins(40), batch_id="b-csp-live")
        await page.goto(f"{url}/batches/b-csp-live")
        await expect(page.locator("#phase")).to_have_text("running")  # events arrive
        asked: list[str] = []

        async def dismiss(dialog: Dialog) -> None:
            asked.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", dismiss)
        await page.click("#cancel")  # its hashed inline handler asks first
        assert asked == ["Cancel every unsettled item of this batch?"]
        await expect(page.locator("#percent")).to_have_text("100.0 %")
        await expect(page.locator("#phase")).to_have_text("completed")
        assert violations == []
        # An inline script that is not in the policy does not run.
        await page.evaluate(
            """() => {
                const s = document.createElement("script");
                s.textContent = "window.__injected = true";
                document.body.appendChild(s);
            }"""
        )
        assert await page.evaluate("window.__injected === undefined") is True
        await h.result("b-csp-live")


async def test_swagger_ui_and_redoc_work_offline_under_their_policy(
    site: Any,  # noqa: F811
) -> None:
    async with site() as (url, _, page):
        violations = _violations(page)
        outside: list[str] = []
        # Requests the browser made and got an answer to (a blocked one gets none).
        page.on(
            "requestfinished",
            lambda request: (
                None
                if request.url.startswith((url, "data:", "blob:"))
                else outside.append(request.url)
            ),
        )
        await page.goto(f"{url}/docs")
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text("fleetbatch")
        await expect(page.locator(".opblock-tag-section").first).to_be_visible()
        await page.goto(f"{url}/redoc")
        await expect(page.locator("h1").first).to_contain_text("fleetbatch")
        assert [v for v in violations if REDOC_LOGO not in v] == []
        assert outside == []
