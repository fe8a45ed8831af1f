"""The console at fleet scale, in Debian's Chromium with everything but loopback blocked: 1,000 robots and a storm
of 1,000 alerts opening, acknowledged in bulk, then closing, while the page keeps answering; and a phone's width.
The figures (longest task, slowest probe) are written to tests/screenshots/console-storm.txt, with screenshots."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from playwright.async_api import Page

from app.platform.settings import Settings, replace_settings
from tests.support.browser import SCREENSHOTS, block_internet, offline_browser
from tests.support.builders import reading
from tests.support.servers import live_api
from tests.system.browser.test_console import SETTLED_WITHIN_MS, wait_for

ROBOTS = 1000
STORM_WITHIN_MS = 30_000  # a loaded CI machine; here the storm shows in a second or two
# The target is 100 ms; a test only holds the page to a loose bound (CI machines are loaded), and the
# figures are recorded. Before grouping and frame batching, the page took 22 s and then 41 s to answer.
LONGEST_TASK_BOUND_MS = 2000
OBSERVE_LONG_TASKS = """() => {
  window.longTasks = [];
  window.phases = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) window.longTasks.push([entry.startTime, entry.duration]);
  }).observe({ type: "longtask" });
}"""
# "Show more" clicked until it hides, two frames apart (the panel renders on the next frame): in the page, as 49
# round trips from the test took 10 s.
PAGE_TO_THE_END = """async () => {
  const more = document.querySelector("#alerts .alert-group button.more");
  for (let clicks = 0; !more.hidden && clicks < 1000; clicks++) {
    more.click();
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  }
  return document.querySelectorAll("#alerts li.alert").length;
}"""
PHASES = ("1,000 readings, no alert", "storm opens", "paging", "bulk acknowledge", "storm closes")


def fleet(at: datetime, battery: float) -> list[dict[str, Any]]:
    return [
        reading(
            f"robot-{i:04d}",
            at,
            battery_level=battery,
            location={"latitude": 37.0 + i % 40 * 0.002, "longitude": -122.3 + i // 40 * 0.002},
        )
        for i in range(ROBOTS)
    ]


async def mark(page: Page) -> None:
    """The start of the next phase, on the page's clock (as long tasks are timed)."""
    await page.evaluate("() => window.phases.push(performance.now())")


async def probe(page: Page, until: asyncio.Event, delays: list[float]) -> None:
    """A round trip to the page's main thread every 50 ms: how long input would wait for it."""
    while not until.is_set():
        started = time.monotonic()
        await page.evaluate("() => 0")
        delays.append((time.monotonic() - started) * 1000)
        await asyncio.sleep(0.05)


async def test_a_storm_of_a_thousand_alerts_leaves_the_console_answering(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    fast = replace_settings(settings, alert_tick_ms=200, alert_interval_ms=50)
    now = datetime.now(UTC) - timedelta(seconds=30)
    async with (
        live_api(fast) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as api,
        offline_browser() as browser,
    ):
        assert (await api.post("/telemetry", json=fleet(now, 80.0))).status_code == 200
        rule = {"name": "battery low", "condition": {"kind": "battery", "below": 20}}
        assert (await api.post("/alert-rules", json=rule)).status_code == 201
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        await block_internet(page, [])
        await page.goto(f"{base}/console")
        await wait_for(page, "window.fleetConsole.streamState === 'live'", 10_000)
        await page.evaluate(OBSERVE_LONG_TASKS)
        delays: list[float] = []
        calm = asyncio.Event()
        prober = asyncio.create_task(probe(page, calm, delays))
        await mark(page)  # the same readings without an alert: what the stream alone costs the page
        assert (await api.post("/telemetry", json=fleet(now + timedelta(seconds=1), 50.0))).status_code == 200
        await wait_for(page, f"window.fleetConsole.appliedUpdates >= {ROBOTS}", STORM_WITHIN_MS)
        started = time.monotonic()
        await mark(page)
        assert (await api.post("/telemetry", json=fleet(now + timedelta(seconds=2), 10.0))).status_code == 200
        await wait_for(page, f"document.querySelector('#alert-count').textContent === '({ROBOTS})'", STORM_WITHIN_MS)
        shown_s = time.monotonic() - started
        summary = page.locator("#alerts .alert-group summary")
        assert await summary.count() == 1 and f"{ROBOTS} open, {ROBOTS} active" in await summary.inner_text()
        await page.screenshot(path=str(SCREENSHOTS / "console-storm.png"))
        # Every open alert is reachable: page through the group to its end.
        await mark(page)
        listed = await page.evaluate(PAGE_TO_THE_END)
        assert listed == ROBOTS
        # Acknowledge them all at once, then let the storm close.
        await mark(page)
        await page.click("#alerts .alert-group button.ack-all")
        await wait_for(
            page, "[...window.fleetConsole.alerts.alerts.values()].every((a) => a.state === 'acknowledged')", 60_000
        )
        active = (await api.get("/alerts", params={"state": "active"})).json()["alerts"]
        assert active == []
        await mark(page)
        assert (await api.post("/telemetry", json=fleet(now + timedelta(seconds=3), 90.0))).status_code == 200
        await wait_for(page, "document.querySelector('#alert-count').textContent === '(0)'", STORM_WITHIN_MS)
        assert await page.locator("#alerts li").count() == 0
        calm.set()
        await prober
        long_tasks: list[list[float]] = await page.evaluate("() => window.longTasks")
        marks: list[float] = await page.evaluate("() => window.phases")
    longest = max((duration for _, duration in long_tasks), default=0.0)
    by_phase = []
    for index, name in enumerate(PHASES):
        end = marks[index + 1] if index + 1 < len(marks) else float("inf")
        in_phase = [duration for at, duration in long_tasks if marks[index] <= at < end]
        by_phase.append(f"{name}: {len(in_phase)} over 50 ms, longest {max(in_phase, default=0):.0f} ms")
    figures = (
        f"alert storm, {ROBOTS} robots: shown in {shown_s:.1f} s; longest task {longest:.0f} ms; "
        f"slowest probe of the main thread {max(delays):.0f} ms over {len(delays)}\n" + "\n".join(by_phase) + "\n"
    )
    (SCREENSHOTS / "console-storm.txt").write_text(figures)
    print(figures)
    assert longest < LONGEST_TASK_BOUND_MS, figures


async def test_at_a_phones_width_the_console_is_one_column_without_sideways_scrolling(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    async with live_api(settings) as base, httpx.AsyncClient(base_url=base) as api, offline_browser() as browser:
        assert (await api.post("/telemetry", json=fleet(datetime.now(UTC), 60.0)[:50])).status_code == 200
        page = await browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        await block_internet(page, [])
        await page.goto(f"{base}/console")
        await wait_for(page, "document.querySelectorAll('#fleet tbody tr').length === 50", 10_000)
        page_width = await page.evaluate("() => document.documentElement.scrollWidth")
        boxes = {name: await page.locator(name).bounding_box() for name in ("#map", "#alerts-panel", "#table-panel")}
        await page.screenshot(path=str(SCREENSHOTS / "console-phone.png"), full_page=True)
        # Rows out of view are not painted (content-visibility), so the full-page picture shows the table empty:
        # scrolled to, as a person would, its rows are drawn.
        await page.locator("#table-panel").scroll_into_view_if_needed()
        await page.screenshot(path=str(SCREENSHOTS / "console-phone-table.png"))
        # A robot's detail, with the custom range's fields open: still one column, nothing wider than the phone.
        await page.locator("#fleet tbody tr[data-robot='robot-0001']").click()
        await wait_for(page, "window.fleetConsole.detail.chart?.robotId === 'robot-0001'", SETTLED_WITHIN_MS)
        await page.select_option("#range", "custom")
        await page.locator("#detail").scroll_into_view_if_needed()
        await page.screenshot(path=str(SCREENSHOTS / "console-phone-detail.png"))
        detail_width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert page_width <= 390 and detail_width <= 390, (page_width, detail_width)
    assert all(box is not None and box["width"] >= 340 for box in boxes.values()), boxes
    assert boxes["#map"] and boxes["#table-panel"] and boxes["#map"]["y"] < boxes["#table-panel"]["y"]
