"""The web UI in a real browser: Playwright drives Debian's Chromium (``/usr/bin/chromium``,
never a downloaded one) against the API served by uvicorn over a test harness.

An operator logs in, uploads a file, watches the bar reach 100 % without a reload,
filters the failed items, searches a VIN, downloads the report, and pauses and
resumes a running batch; an enrich batch of users is uploaded through the same page
and its batch page names its keys user_id and lists its result files. Screenshots of
the batch pages are saved under ``artifacts/`` (gitignored) for whoever looks at a
CI run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from temporalio.client import Client

from api_support import OPERATOR, VIEWER, api_users, api_vins, auth, users_csv
from external import unavailable
from fleetbatch.api import create_app
from fleetbatch.api.server import running_api
from fleetbatch.domain import ItemStatus
from fleetbatch.pipelines.enrich.service import EnrichmentSimulatorConfig
from fleetbatch.services import control
from support import Harness, csv_bytes, harness

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM} (.ci/run installs it with apt)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


Site = tuple[str, Harness, Page]


@pytest.fixture
def site(
    browser: Browser, dev_client: Client, tmp_path: Path
) -> Callable[..., contextlib.AbstractAsyncContextManager[Site]]:
    """``async with site(**harness_settings) as (url, h, page)``: the app served on a free
    port, and a browser page logged in as an operator."""

    @contextlib.asynccontextmanager
    async def make(**settings: Any) -> AsyncIterator[Site]:
        settings.setdefault("api_viewer_tokens", [VIEWER])
        settings.setdefault("api_operator_tokens", [OPERATOR])
        async with (
            harness(dev_client, tmp_path, **settings) as h,
            running_api(
                create_app(h.settings, store=h.store, client=h.client), "127.0.0.1", 0
            ) as url,
        ):
            context = await browser.new_context(accept_downloads=True)
            context.set_default_timeout(TIMEOUT_MS)
            page = await context.new_page()
            try:
                await page.goto(f"{url}/batches/none")
                await expect(page).to_have_url(f"{url}/login?next=/batches/none")
                await page.fill("#token", OPERATOR)
                await page.click("button[type=submit]")
                await expect(page.locator("#error")).to_have_text("no batch 'none'")
                yield url, h, page
            finally:
                await context.close()

    return make


async def test_upload_watch_filter_search_download(site: Any, tmp_path: Path) -> None:
    rows = api_vins(40)
    path = tmp_path / "fleet.csv"
    path.write_bytes(csv_bytes([*rows[:20], "not-a-vin", *rows[20:]]))
    async with site(latency_ms=250, failure_rate=0.25, seed=3, chunk_size=5, max_in_flight=1) as (
        url,
        h,
        page,
    ):
        await page.goto(f"{url}/upload")
        await page.set_input_files("#file", str(path))
        await page.select_option("#command", "lock_doors")
        await page.fill("#batch_id", "b-browser")
        await page.click("#submit")
        await expect(page.locator("#summary")).to_contain_text("40 accepted, 1 rejected")
        await expect(page.locator("#rejections")).to_contain_text("not-a-vin")
        await expect(page.locator("#rejections")).to_contain_text("22")

        await page.click("#batch-link")
        await expect(page).to_have_url(f"{url}/batches/b-browser")
        await expect(page.locator("#pipeline")).to_have_text("vehicle")
        await expect(page.locator("#label")).to_have_text("lock_doors")
        await expect(page.locator("#items thead th").nth(1)).to_have_text("VIN")
        first = float((await page.inner_text("#percent")).removesuffix(" %"))
        await page.evaluate("window.__sameDocument = true")
        await expect(page.locator("#percent")).to_have_text("100.0 %")
        await expect(page.locator("#phase")).to_have_text("completed")
        assert first < 100.0, "the batch finished before the page loaded: nothing was live"
        # The bar moved by events, not by reloading the page.
        assert await page.evaluate("window.__sameDocument") is True
        # One segment per status, each as wide as its share; settled ones fill the bar.
        widths = await segment_widths(page)
        counts = {s: int(await page.inner_text(f"#count-{s}")) for s in widths}
        assert sum(counts.values()) == 40
        assert widths == {s: pytest.approx(100 * n / 40, abs=0.01) for s, n in counts.items()}
        assert counts["pending"] == counts["in_flight"] == 0
        await expect(page.locator("#eta-part")).to_be_hidden()
        # At the end the item table is fetched again, still without a reload.
        await expect(page.locator("#items")).not_to_contain_text("pending")
        await expect(page.locator("#items")).not_to_contain_text("in_flight")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "batch-page.png"), full_page=True)

        failed = int(await page.inner_text("#count-failed"))
        assert failed > 0, "the simulator's failure rate failed nothing"
        await page.select_option("#status-filter", "failed")
        await page.click("#filter")
        statuses = page.locator("#items tr.item .status")
        await expect(statuses).to_have_count(failed)
        assert set(await statuses.all_inner_texts()) == {"failed"}

        await page.select_option("#status-filter", "")
        await page.fill("#key-search", rows[7].lower())
        await page.click("#filter")
        await expect(page.locator("#items tr.item")).to_have_count(1)
        await expect(page.locator("#items tr.item .key")).to_have_text(rows[7])

        async with page.expect_download() as download_info:
            await page.click("#report-link")
        download = await download_info.value
        saved = tmp_path / "report.csv"
        await download.save_as(saved)
        report = list(csv.DictReader(io.StringIO(saved.read_text())))
        assert sorted(r["key"] for r in report) == sorted(rows)
        assert sum(r["status"] == "failed" for r in report) == failed
        await h.result("b-browser")


async def segment_widths(page: Page) -> dict[str, float]:
    """Each status segment's width as a share of the bar, in per cent."""
    shares: dict[str, float] = await page.evaluate(
        """() => {
            const bar = document.getElementById("bar").getBoundingClientRect().width;
            return Object.fromEntries([...document.querySelectorAll("#bar .seg")].map(
                (seg) => [seg.id.slice(4), 100 * seg.getBoundingClientRect().width / bar]));
        }"""
    )
    return shares


async def test_pause_and_resume_from_the_batch_page(site: Any) -> None:
    async with site(latency_ms=150, chunk_size=4, max_in_flight=1) as (url, h, page):
        await h.submit(api_vins(60), batch_id="b-pause")
        await page.goto(f"{url}/batches/b-pause")
        await expect(page.locator("#phase")).to_have_text("running")
        await page.click("#pause")
        await expect(page.locator("#phase")).to_have_text("paused")
        await expect(page.locator("#resume")).to_be_visible()
        await expect(page.locator("#pause")).to_be_hidden()
        await expect(page.locator("#eta-part")).to_be_hidden()
        await expect(page.locator("#announce")).to_contain_text("paused")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "batch-paused.png"), full_page=True)
        paused_at = float((await page.inner_text("#percent")).removesuffix(" %"))
        assert paused_at < 100.0

        await page.click("#resume")
        await expect(page.locator("#percent")).to_have_text("100.0 %")
        await expect(page.locator("#phase")).to_have_text("completed")
        counts = await h.result("b-pause")
        assert counts["succeeded"] == 60


async def test_upload_users_for_enrichment_and_see_the_batch_page(
    site: Any, tmp_path: Path
) -> None:
    users = api_users(6, 500)
    path = tmp_path / "users.csv"
    path.write_bytes(users_csv([*users[:3], ("", "nobody@example.com", "fr"), *users[3:]]))
    enrichment = EnrichmentSimulatorConfig(
        latency_ms=300, latency_jitter_ms=0, failure_rate=0.0, seed=5
    )
    async with site(enrichment=enrichment, max_in_flight=1) as (url, h, page):
        await page.goto(f"{url}/upload")
        await expect(page.locator("#pipeline option[value=vehicle]")).to_have_count(1)
        await expect(page.locator("#pipeline option[value=enrich]")).to_have_count(1)
        await page.set_input_files("#file", str(path))
        await page.select_option("#pipeline", "enrich")
        await page.select_option("#format", "csv")
        await page.fill("#batch_id", "b-browser-en")
        await page.fill("input[name=chunk_size]", "2")
        await page.click("#submit")
        await expect(page.locator("#summary")).to_contain_text("(enrich: enrich)")
        await expect(page.locator("#summary")).to_contain_text("6 accepted, 1 rejected")
        await expect(page.locator("#rejections")).to_contain_text("missing user_id")
        await expect(page.locator("#rejections")).to_contain_text("nobody@example.com")

        await page.click("#batch-link")
        await expect(page).to_have_url(f"{url}/batches/b-browser-en")
        await expect(page.locator("#batch-id")).to_have_text("b-browser-en")
        await expect(page.locator("#pipeline")).to_have_text("enrich")
        await expect(page.locator("#label")).to_have_text("enrich")
        await expect(page.locator("#items thead th").nth(1)).to_have_text("user_id")
        await expect(page.locator("#breaker")).to_have_count(0)
        first = float((await page.inner_text("#percent")).removesuffix(" %"))
        await page.evaluate("window.__sameDocument = true")
        await expect(page.locator("#percent")).to_have_text("100.0 %")
        await expect(page.locator("#phase")).to_have_text("completed")
        await expect(page.locator("#count-succeeded")).to_have_text("6")
        keys = page.locator("#items tr.item .key")
        await expect(keys).to_have_count(6)
        assert await keys.all_inner_texts() == [u for u, _, _ in users]
        # The result files are listed once the chunks wrote them, without a reload.
        links = page.locator("#outputs a")
        await expect(links).to_have_count(3)
        assert first < 100.0, "the batch finished before the page loaded: nothing was live"
        assert await page.evaluate("window.__sameDocument") is True
        names = await links.all_inner_texts()
        assert names == [
            f"b-browser-en-items-{first:012d}-{first + 1:012d}.csv"
            for first in sorted(item["id"] for item in (await h.items("b-browser-en")).values())[
                ::2
            ]
        ]
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "enrich-batch-page.png"), full_page=True)

        async with page.expect_download() as download_info:
            await links.first.click()
        download = await download_info.value
        assert download.suggested_filename == names[0]
        saved = tmp_path / names[0]
        await download.save_as(saved)
        records = list(csv.DictReader(io.StringIO(saved.read_text())))
        assert [(r["user_id"], r["country"], r["status"]) for r in records] == [
            (users[0][0], "DE", "succeeded"),
            (users[1][0], "DE", "succeeded"),
        ]

        await page.fill("#key-search", users[4][0])
        await page.click("#filter")
        await expect(keys).to_have_count(1)
        await expect(keys).to_have_text(users[4][0])
        await h.result("b-browser-en")


async def logged_in(browser: Browser, url: str, **options: Any) -> BrowserContext:
    """A new browser context (viewport, colour scheme…) logged in as an operator."""
    context = await browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await page.goto(f"{url}/login")
    await page.fill("#token", OPERATOR)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{url}/")
    return context


WIDER_THAN_VIEWPORT = """() => {
    // Tables scroll inside their .scroll box: what is in one may be wider than the page.
    const width = window.innerWidth;
    const wide = [];
    const root = document.documentElement.scrollWidth;
    if (root > width) wide.push("document " + root);
    for (const el of document.querySelectorAll("body *")) {
        if (el.parentElement.closest(".scroll")) continue;
        const right = el.getBoundingClientRect().right;
        if (right > width + 0.5) wide.push(`${el.tagName}#${el.id}.${el.className} ${right}`);
    }
    return wide;
}"""


async def test_the_batch_list_shows_progress_and_paused_and_refreshes_itself(site: Any) -> None:
    async with site(latency_ms=50, chunk_size=4, max_in_flight=1) as (url, h, page):
        await h.submit(api_vins(24, 600), batch_id="b-list")
        await control.pause(h.client, h.store, "b-list")
        await h.until_progress("b-list", lambda p: p.phase == "paused")
        await page.goto(f"{url}/")
        row = page.locator("#row-b-list")
        # Stored as running; paused is what it is.
        assert (await h.store.batches.get("b-list")).status == "running"
        await expect(row.locator(".status")).to_have_text("paused")
        await expect(row.locator("[role=progressbar]")).to_have_count(1)
        await page.evaluate("window.__sameDocument = true")

        await control.resume(h.client, h.store, "b-list")
        await expect(row.locator(".status")).to_have_text("completed")
        await expect(row.locator(".pct")).to_have_text("100.0 %")
        await expect(row.locator("td.num").first).to_have_text("24 / 24")
        await expect(row.locator(".c-succeeded")).to_have_text("24")
        assert await page.evaluate("window.__sameDocument") is True
        created = await row.locator("time").first.inner_text()
        assert created.endswith(" UTC"), created
        await h.result("b-list")


VIEWS = [(1280, "light"), (1280, "dark"), (390, "light"), (390, "dark")]


@contextlib.asynccontextmanager
async def viewed(browser: Browser, url: str, width: int, scheme: str) -> AsyncIterator[Page]:
    """The logged-in start page at ``width`` px in the ``scheme`` colours."""
    context = await logged_in(
        browser, url, viewport={"width": width, "height": 900}, color_scheme=scheme
    )
    try:
        yield context.pages[0]
    finally:
        await context.close()


async def test_screenshots_fit_the_viewport_light_and_dark(site: Any, browser: Browser) -> None:
    vins = api_vins(60, 700)
    async with site(
        latency_ms=20, failure_rate=0.3, seed=5, denied_vins=vins[:4], chunk_size=10
    ) as (url, h, _):
        await h.submit(vins, batch_id="b-shots-with-a-long-name-to-wrap")
        await h.result("b-shots-with-a-long-name-to-wrap")
        for batch_id, start in (("b-shots-paused", 800), ("b-shots-cancelled", 900)):
            await h.submit(api_vins(30, start), batch_id=batch_id, chunk_size=2, max_in_flight=1)
        await control.pause(h.client, h.store, "b-shots-paused")
        await control.cancel(h.client, h.store, "b-shots-cancelled", "seen enough")
        await h.result("b-shots-cancelled")
        ARTIFACTS.mkdir(exist_ok=True)
        for width, scheme in VIEWS:
            async with viewed(browser, url, width, scheme) as page:
                background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
                assert background == (
                    "rgb(18, 21, 27)" if scheme == "dark" else "rgb(247, 248, 250)"
                )
                await expect(page.locator("#row-b-shots-paused .status")).to_have_text("paused")
                await page.screenshot(
                    path=str(ARTIFACTS / f"list-{width}-{scheme}.png"), full_page=True
                )
                assert await page.evaluate(WIDER_THAN_VIEWPORT) == []

                await page.goto(f"{url}/batches/b-shots-with-a-long-name-to-wrap")
                await expect(page.locator("#phase")).to_have_text("completed")
                await expect(page.locator("#chart svg")).to_have_count(1)
                await expect(page.locator("#reasons tr.reason")).to_have_count(2)
                await page.screenshot(
                    path=str(ARTIFACTS / f"batch-{width}-{scheme}.png"), full_page=True
                )
                await page.screenshot(path=str(ARTIFACTS / f"batch-{width}-{scheme}-top.png"))
                assert await page.evaluate(WIDER_THAN_VIEWPORT) == []

                # The other pages fit too: an item's, the redrive confirmation, the upload form.
                await page.click("#items tr.item .key a >> nth=0")
                await expect(page.locator("#attempts")).to_be_visible()
                await page.screenshot(path=str(ARTIFACTS / f"item-{width}-{scheme}.png"))
                assert await page.evaluate(WIDER_THAN_VIEWPORT) == []
                await page.go_back()
                await page.click("#redrive-failed")
                await expect(page.locator("#confirm-redrive")).to_be_visible()
                await page.screenshot(path=str(ARTIFACTS / f"redrive-{width}-{scheme}.png"))
                assert await page.evaluate(WIDER_THAN_VIEWPORT) == []
                await page.goto(f"{url}/upload")
                await page.screenshot(path=str(ARTIFACTS / f"upload-{width}-{scheme}.png"))
                assert await page.evaluate(WIDER_THAN_VIEWPORT) == []


async def test_a_batch_waiting_for_its_window_shows_the_window_ramp_and_allowance(
    site: Any, browser: Browser
) -> None:
    # Uploaded through the API as an operator would: a window that opens in three
    # hours, a ramp from 600/min and an overshoot bound of 3 over 2 tolerated failures.
    # Nothing is published while it waits, so the ramp still allows its base rate and
    # the allowance is 2 + 3 with nothing in flight.
    opens = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)
    window = f"{opens.minute} {opens.hour} * * * 30m UTC"
    batch_id = "b-shots-window-ramp"
    async with site(chunk_size=5) as (url, h, _):
        async with httpx.AsyncClient(base_url=url) as http:
            uploaded = await http.post(
                "/api/batches",
                files={"file": ("vins.csv", csv_bytes(api_vins(20, 1200)), "text/csv")},
                data={
                    "command": "lock_doors",
                    "batch_id": batch_id,
                    "windows": window,
                    "ramp": "base=600/min,factor=2,after=10,max=1200/min",
                    "max_failures": "2",
                    "overshoot": "3",
                },
                headers=auth(OPERATOR),
            )
        assert uploaded.status_code == 201, uploaded.text
        await h.until_progress(batch_id, lambda p: p.window == "waiting")
        ARTIFACTS.mkdir(exist_ok=True)
        for width, scheme in VIEWS:
            async with viewed(browser, url, width, scheme) as page:
                await page.goto(f"{url}/batches/{batch_id}")
                await expect(page.locator("#window")).to_be_visible()
                await expect(page.locator("#window-state")).to_have_text("waiting")
                await expect(page.locator("#window-next")).to_have_text(
                    f"· opens {opens:%Y-%m-%d %H:%M:%S} UTC"
                )
                await expect(page.locator("#ramp")).to_be_visible()
                await expect(page.locator("#ramp")).to_have_text("ramp allows 600 items/min now")
                await expect(page.locator("#in-flight")).to_be_visible()
                await expect(page.locator("#in-flight")).to_have_text(
                    "in flight at most 5 items (abort rules + overshoot)"
                )
                # The live events write them too (blanked here, they come back) without
                # a reload, and without a script error.
                errors: list[str] = []

                def script_error(error: Any, errors: list[str] = errors) -> None:
                    errors.append(str(error))

                page.on("pageerror", script_error)
                await page.evaluate(
                    """() => {
                        window.__sameDocument = true;
                        for (const id of ["allowed-rate", "allowance", "window-until"])
                            document.getElementById(id).textContent = "";
                    }"""
                )
                await expect(page.locator("#allowed-rate")).to_have_text("600")
                await expect(page.locator("#window-until")).to_have_text(
                    f"{opens:%Y-%m-%d %H:%M:%S} UTC"
                )
                await expect(page.locator("#allowance")).to_have_text("5")
                await expect(page.locator("#window-state")).to_have_text("waiting")
                assert await page.evaluate("window.__sameDocument") is True
                assert errors == []
                # The time the window opens is never split over two lines, even at 390 px.
                lines = "document.getElementById('window-until').getClientRects().length"
                assert await page.evaluate(lines) == 1
                until = await page.get_attribute("#window-until", "datetime")
                assert until is not None and datetime.fromisoformat(until) == opens
                await expect(page.locator("#done")).to_have_text("0")
                await page.screenshot(
                    path=str(ARTIFACTS / f"schedule-{width}-{scheme}.png"), full_page=True
                )
                assert await page.evaluate(WIDER_THAN_VIEWPORT) == []
        assert len(h.domain.delivered) == 0
        await control.cancel(h.client, h.store, batch_id, "seen enough")
        assert (await h.result(batch_id))["cancelled"] == 20


async def shown_counts(page: Page) -> tuple[int, dict[str, int]]:
    """The batch page's total and counts by status, read in one go (an event may come
    between two separate reads)."""
    found: dict[str, int] = await page.evaluate(
        """(statuses) => {
            const number = (id) => Number(document.getElementById(id).textContent);
            const counts = statuses.map((s) => [s, number("count-" + s)]);
            return {total: number("total"), ...Object.fromEntries(counts)};
        }""",
        [s.value for s in ItemStatus],
    )
    return found.pop("total"), found


async def test_a_redrive_from_the_batch_page_keeps_the_whole_batch_in_view(site: Any) -> None:
    async with site(latency_ms=200, failure_rate=0.3, seed=3, chunk_size=2, max_in_flight=1) as (
        url,
        h,
        page,
    ):
        await h.submit(api_vins(30, 1000), batch_id="b-redrive")
        await h.result("b-redrive")
        before = await h.store.items.counts("b-redrive")
        assert before["failed"] > 0
        await page.goto(f"{url}/batches/b-redrive")
        await page.click("#redrive-failed")
        await expect(page).to_have_url(f"{url}/batches/b-redrive/redrive?status=failed")
        await expect(page.locator("#redrive-count")).to_have_text(str(before["failed"]))
        await page.click("#confirm-redrive")
        await expect(page).to_have_url(f"{url}/batches/b-redrive")
        # While the failed items run again the page counts the whole batch, never the
        # redriven items alone ("0 of 9"), and what succeeded before stays counted.
        shown: list[dict[str, int]] = []
        while not shown or await page.inner_text("#phase") != "completed":
            total, counts = await shown_counts(page)
            assert total == sum(counts.values()) == 30, counts
            assert counts["succeeded"] >= before["succeeded"], counts
            shown.append(counts)
            await page.wait_for_timeout(200)
        assert any(c["pending"] + c["in_flight"] > 0 for c in shown), "the redrive went unseen"
        after = await h.store.items.counts("b-redrive")
        await expect(page.locator("#count-succeeded")).to_have_text(str(after["succeeded"]))
        await expect(page.locator("#done")).to_have_text("30")
        await h.result("b-redrive")


async def test_the_page_counts_add_up_and_equal_the_store_every_second(site: Any) -> None:
    # Chunks of 10 whose answers take 2.5 s: the store's counts move in steps with
    # quiet between them. Every second the page must add up to the total, and while
    # the store holds still the page must come to show exactly what it holds (its
    # events come every half second; a busy machine may take a while to make one).
    async with site(latency_ms=2500, failure_rate=0.2, seed=9, chunk_size=10, max_in_flight=2) as (
        url,
        h,
        page,
    ):
        await h.submit(api_vins(60, 1100), batch_id="b-truth")
        await page.goto(f"{url}/batches/b-truth")
        first_update = await page.inner_text("#updated")

        async def shown() -> dict[str, int]:
            total, counts = await shown_counts(page)
            assert total == sum(counts.values()) == 60, counts
            return counts

        compared, busy, etas = 0, 0, []
        while await page.inner_text("#phase") != "completed":
            store = await h.store.items.counts("b-truth")
            for _ in range(20):
                if (page_counts := await shown()) == store:
                    break
                await page.wait_for_timeout(100)
            if await h.store.items.counts("b-truth") == store:
                assert page_counts == store  # the store held still: the page came to show it
                compared += 1
            if page_counts["pending"] and page_counts["in_flight"]:
                busy += 1
            if await page.locator("#eta-part").is_visible():
                etas.append(await page.inner_text("#eta"))
            await page.wait_for_timeout(1000)
        assert compared >= 2, "the store never held still long enough to compare"
        assert busy >= 1, "never saw items pending and in flight while chunks ran"
        assert etas and all(re.fullmatch(r"\d+s|\d+m \d\ds", eta) for eta in etas), etas
        # "updated" is the last change of an item, moved live, with its zone.
        last_update = await page.inner_text("#updated")
        assert last_update != first_update and last_update.endswith(" UTC"), last_update
        await h.result("b-truth")
