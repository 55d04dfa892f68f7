"""The batch page and list as the server renders them: the status bar and legend, the
chart, failures by reason with their filtered item lists, the redrive confirmation,
time zones on timestamps, the list's progress, and the favicon."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import quote

from api_support import OPERATOR, VIEWER, Api, ApiFactory, api_vins

UNREACHABLE = "domain rejected the command: vehicle unreachable"
NO_CONSENT = "owner has not consented"


async def _login(api: Api, token: str) -> None:
    api.http.cookies.clear()
    response = await api.http.post("/login", data={"token": token, "next": "/"})
    assert response.status_code == 303


async def _mixed_batch(api: Api, batch_id: str, start: int) -> dict[str, int]:
    """A finished batch with failed and skipped items; its counts by status."""
    await api.h.submit(api_vins(30, start), batch_id=batch_id)
    await api.h.result(batch_id)
    return await api.h.store.items.counts(batch_id)


def _times(page: str) -> list[str]:
    return re.findall(r'<time[^>]*datetime="([^"]+)"[^>]*>([^<]*)</time>', page)


async def test_bar_legend_chart_and_zones_on_the_batch_page(api_factory: ApiFactory) -> None:
    vins = api_vins(30, 100)
    async with api_factory(failure_rate=0.3, seed=4, denied_vins=vins[:3]) as api:
        counts = await _mixed_batch(api, "b-bar", 100)
        assert counts["failed"] > 0 and counts["skipped"] == 3
        await _login(api, VIEWER)
        page = (await api.http.get("/batches/b-bar")).text
    for status, n in counts.items():
        assert f'<strong id="count-{status}">{n}</strong>' in page
        assert f'id="seg-{status}" style="width: {round(100 * n / 30, 3)}%"' in page
    assert 'role="progressbar" aria-label="Progress"' in page
    assert 'aria-live="polite">100 % settled, 30 of 30 items, completed</p>' in page
    assert 'id="eta-part" hidden' in page  # finished: no ETA
    # The chart: one bar per status and bucket, and a text summary for screen readers.
    assert '<svg class="chart"' in page
    assert re.search(
        rf"30 items settled between [^:]+:\d\d:\d\d UTC and .+ UTC:\s+"
        rf"{counts['succeeded']} succeeded, {counts['failed']} failed, "
        rf"3 skipped, 0 cancelled\.",
        page,
    )
    drawn = re.findall(r'<rect class="(\w+)"[^>]*><title>[^<]* UTC: (\d+) \w+</title>', page)
    assert {s for s, _ in drawn} == {"succeeded", "failed", "skipped"}
    assert sum(int(n) for _, n in drawn) == 30
    # Every timestamp says its zone, in its text and its datetime attribute.
    times = _times(page)
    assert len(times) >= 3 + 30  # created, updated, finished and one per item
    for iso, text in times:
        assert iso.endswith("+00:00") and text.endswith(" UTC"), (iso, text)


async def test_failures_by_reason_link_to_their_items(api_factory: ApiFactory) -> None:
    vins = api_vins(30, 200)
    async with api_factory(failure_rate=0.3, seed=4, denied_vins=vins[:2]) as api:
        counts = await _mixed_batch(api, "b-why", 200)
        await _login(api, VIEWER)
        page = (await api.http.get("/batches/b-why")).text
        rows = re.findall(
            r'<tr class="reason">\s*<td><span class="status (\w+)">.*?'
            r'<a class="reason-link" href="([^"]+)">([^<]+)</a></td>\s*'
            r'<td class="num">(\d+)</td>',
            page,
            re.S,
        )
        assert [(s, unescape(e), int(n)) for s, _, e, n in rows] == [
            ("failed", UNREACHABLE, counts["failed"]),
            ("skipped", NO_CONSENT, 2),
        ]
        href = unescape(rows[0][1])
        assert href == f"/batches/b-why?status=failed&error={quote(UNREACHABLE)}"
        # A viewer sees the reasons, not the redrive links.
        assert "Redrive" not in page
        filtered = (await api.http.get(href)).text
        assert filtered.count('<tr class="item">') == counts["failed"]
        assert filtered.count(UNREACHABLE) >= counts["failed"]
        assert 'id="error-filter" value="' + UNREACHABLE + '"' in filtered
        assert 'id="clear-filters" href="/batches/b-why"' in filtered
        none = await api.http.get("/batches/b-why", params={"error": "no such reason"})
        assert 'id="no-items">No items match.<' in none.text
        long = await api.http.get("/batches/b-why", params={"error": "x" * 2001})
        assert long.status_code == 422


async def test_redrive_asks_first_and_then_runs_the_failed_items(
    api_factory: ApiFactory,
) -> None:
    async with api_factory(failure_rate=0.3, seed=4) as api:
        counts = await _mixed_batch(api, "b-again", 300)
        failed = counts["failed"]
        await _login(api, OPERATOR)
        page = (await api.http.get("/batches/b-again")).text
        assert 'id="redrive-failed" href="/batches/b-again/redrive?status=failed"' in page
        assert f"Redrive failed ({failed})…" in page
        assert 'id="redrive-skipped"' not in page  # nothing skipped: nothing to offer

        confirm = await api.http.get("/batches/b-again/redrive", params={"status": "failed"})
        assert confirm.status_code == 200
        text = confirm.text
        assert f'<strong id="redrive-count">{failed}</strong> failed items' in text
        assert '<input type="hidden" name="status" value="failed">' in text
        assert f'id="confirm-redrive">Redrive {failed} items<' in text
        # Asking changed nothing.
        assert await api.h.store.items.counts("b-again") == counts

        bad = await api.http.get("/batches/b-again/redrive", params={"status": "succeeded"})
        assert bad.status_code == 422
        assert (
            'id="error">cannot redrive &#39;succeeded&#39; items: choose from failed, '
            "cancelled, skipped<"
        ) in bad.text

        done = await api.http.post("/batches/b-again/redrive", data={"status": "failed"})
        assert done.status_code == 303
        assert done.headers["location"] == "/batches/b-again"
        await api.h.result("b-again")
        assert (await api.h.store.batches.get("b-again")).redrives == 1

        await _login(api, VIEWER)
        refused = await api.http.get("/batches/b-again/redrive")
        assert refused.status_code == 403
        assert 'id="error">redrive needs the operator role<' in refused.text
        refused = await api.http.post("/batches/b-again/redrive", data={"status": "failed"})
        assert refused.status_code == 403


async def test_redrive_by_reason_runs_only_the_items_of_that_reason(
    api_factory: ApiFactory,
) -> None:
    vins = api_vins(30, 350)
    async with api_factory(failure_rate=0.3, seed=4, denied_vins=vins[:2]) as api:
        counts = await _mixed_batch(api, "b-why-again", 350)
        before = await api.h.items("b-why-again")
        await _login(api, OPERATOR)
        page = (await api.http.get("/batches/b-why-again")).text
        link = f"/batches/b-why-again/redrive?status=skipped&amp;error={quote(NO_CONSENT)}"
        assert f'<a class="redrive-reason" href="{link}">Redrive…</a>' in page
        assert f"Redrive failed ({counts['failed']})…" in page
        assert "Redrive skipped (2)…" in page

        confirm = (await api.http.get(unescape(link))).text
        assert '<strong id="redrive-count">2</strong> skipped items' in confirm
        assert f'<q id="redrive-reason">{NO_CONSENT}</q>' in confirm
        assert '<input type="hidden" name="status" value="skipped">' in confirm
        assert f'<input type="hidden" name="error" value="{NO_CONSENT}">' in confirm
        unknown = await api.http.get(
            "/batches/b-why-again/redrive", params={"status": "failed", "error": "no such"}
        )
        assert 'id="nothing">No failed items with this reason: nothing to redrive.<' in (
            unknown.text
        )

        done = await api.http.post(
            "/batches/b-why-again/redrive", data={"status": "skipped", "error": NO_CONSENT}
        )
        assert done.status_code == 303
        await api.h.result("b-why-again")
        after = await api.h.items("b-why-again")
        # The two skipped items ran again under new command ids (and were skipped
        # again: still no consent); every other item kept its outcome and command id.
        again = {k for k in after if after[k]["effect_id"] != before[k]["effect_id"]}
        assert again == set(vins[:2])
        assert all(after[k]["status"] == "skipped" for k in again)
        assert {k: v["status"] for k, v in after.items() if k not in again} == {
            k: v["status"] for k, v in before.items() if k not in again
        }
        assert await api.h.store.items.counts("b-why-again") == counts


async def test_the_confirmation_refuses_a_batch_still_running(api_factory: ApiFactory) -> None:
    async with api_factory(latency_ms=200, chunk_size=2, max_in_flight=1) as api:
        await api.h.submit(api_vins(10, 400), batch_id="b-busy")
        await api.h.until_progress("b-busy", lambda p: p.phase == "running")
        await _login(api, OPERATOR)
        page = await api.http.get("/batches/b-busy/redrive", params={"status": "failed"})
        assert 'id="not-finished">The batch is running: only a finished batch' in page.text
        assert 'id="confirm-redrive"' not in page.text
        assert 'id="redrive-by-status"' not in (await api.http.get("/batches/b-busy")).text
        await api.h.result("b-busy")


async def test_the_list_shows_progress_counts_rate_and_duration(api: Api) -> None:
    await api.h.submit(api_vins(4, 500), batch_id="b-listed")
    await api.h.result("b-listed")
    await _login(api, VIEWER)
    page = (await api.http.get("/")).text
    row = page[page.index('<tr class="batch" id="row-b-listed">') :]
    row = row[: row.index("</tr>")]
    assert '<span class="status completed">completed</span>' in row
    assert '<span class="pct">100.0 %</span>' in row
    assert '<td class="num">4 / 4</td>' in row
    assert '<span class="c-succeeded">4</span> / <span class="c-failed">0</span>' in row
    assert re.search(r'<td class="num">\d+\.\d/s</td>', row)
    assert re.search(r'<td class="num">\d+s</td>', row)
    times = _times(row)
    assert len(times) == 2  # created and finished
    assert all(text.endswith(" UTC") for _, text in times)
    assert '<script src="/static/batches.js"></script>' in page


async def test_the_favicon_is_served_to_anyone(api: Api) -> None:
    icon = await api.http.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"
    assert icon.text.startswith("<svg")
    linked = await api.http.get("/static/favicon.svg")
    assert linked.status_code == 200 and linked.text == icon.text
    login = (await api.http.get("/login")).text
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in login


async def test_an_aborted_batch_shows_no_eta_and_no_full_green_bar(
    api_factory: ApiFactory,
) -> None:
    async with api_factory(failure_rate=0.6, seed=4, chunk_size=2, max_in_flight=1) as api:
        await api.h.submit(api_vins(30, 450), batch_id="b-abort", max_failures="2")
        await api.h.result("b-abort")
        counts = await api.h.store.items.counts("b-abort")
        await _login(api, VIEWER)
        page = (await api.http.get("/batches/b-abort")).text
    assert 'phase <span id="phase" class="status aborted">aborted</span>' in page
    assert counts["cancelled"] > 0 and counts["succeeded"] < 30
    assert 'id="eta-part" hidden' in page
    assert re.search(r'<p id="stop-reason" class="error" >[^<]+</p>', page)
    for status, n in counts.items():
        assert f'id="seg-{status}" style="width: {round(100 * n / 30, 3)}%"' in page
