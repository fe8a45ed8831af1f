"""The console's views in Debian's Chromium, everything but loopback blocked: "fit fleet" past a far outlier, the
map without tiles (grid, scale, notice), a robot's track replayed over a picked range (equal to its history from
the API), alert search, and the light theme. Screenshots go to tests/screenshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from app.platform.settings import Settings, replace_settings
from tests.support.browser import SCREENSHOTS, block_internet, offline_browser
from tests.support.builders import reading
from tests.support.servers import live_api
from tests.system.browser.test_console import SETTLED_WITHIN_MS, wait_for

SITE_ROBOTS = 30
OUTLIER = {"latitude": 37.1, "longitude": -121.88}  # 37 km east of the site
TRACK_MINUTES = 120


def site(now: datetime) -> list[dict[str, Any]]:
    robots = [
        reading(
            f"site-{i:02d}",
            now,
            battery_level=10.0 if i < 2 else 80.0,
            location={"latitude": 37.1 + i % 6 * 0.0004, "longitude": -122.3 + i // 6 * 0.0004},
        )
        for i in range(SITE_ROBOTS)
    ]
    return [*robots, reading("far-away", now, location=OUTLIER)]


def track(start: datetime) -> list[dict[str, Any]]:
    """The rover drives north-east, one reading a minute for two hours."""
    return [
        reading(
            "rover",
            start + timedelta(minutes=i),
            battery_level=90 - i * 0.25,
            battery_voltage=24.0 + i % 2 * 0.01,  # a 0.01 V wobble
            status="moving",
            location={"latitude": 37.1 + i * 0.00005, "longitude": -122.3 + i * 0.00003},
        )
        for i in range(TRACK_MINUTES)
    ]


async def history(api: httpx.AsyncClient, robot_id: str, since: str, until: str) -> list[list[float]]:
    """The robot's positions in [since, until), oldest first, read page by page from the API."""
    positions: list[list[float]] = []
    cursor = None
    while True:
        params = {"since": since, "until": until, "limit": "1000", **({"cursor": cursor} if cursor else {})}
        page = (await api.get(f"/telemetry/{robot_id}", params=params)).json()
        positions += [[r["location"]["latitude"], r["location"]["longitude"]] for r in page["readings"]]
        cursor = page["next_cursor"]
        if not cursor:
            return positions[::-1]


async def test_fit_fleet_the_tileless_map_track_replay_alert_search_and_the_light_theme(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=TRACK_MINUTES + 5)
    fast = replace_settings(settings, alert_tick_ms=200, alert_interval_ms=50)
    async with (
        live_api(fast) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as api,
        offline_browser() as browser,
    ):
        rule = {"name": "battery low", "condition": {"kind": "battery", "below": 20}}
        assert (await api.post("/alert-rules", json=rule)).status_code == 201
        for body in (site(datetime.now(UTC)), track(start)):
            assert (await api.post("/telemetry", json=body)).status_code == 200
        page = await browser.new_page(viewport={"width": 1400, "height": 1000}, timezone_id="UTC", color_scheme="dark")
        await block_internet(page, [])
        await page.goto(f"{base}/console")
        await wait_for(page, "window.fleetConsole.streamState === 'live'", 10_000)

        # Fit fleet: the site fills the view; the outlier 37 km away is left outside, and the button says so.
        await page.click(".fit-fleet")
        in_view = await page.evaluate(
            """() => { const m = window.fleetConsole.map; const view = m.map.getBounds();
              return [...m.markers].filter(([, marker]) => view.contains(marker.getLatLng())).map(([id]) => id) }"""
        )
        assert "far-away" not in in_view and sum(robot.startswith("site-") for robot in in_view) == SITE_ROBOTS
        outside = SITE_ROBOTS + 2 - len(in_view)  # the outlier, and the rover if it drove far enough
        assert await page.get_attribute(".fit-fleet", "title") == f"{outside} robots are outside this view"
        assert await page.evaluate("() => window.fleetConsole.map.map.getZoom()") >= 14
        # No tiles: the grid, the scale and a notice say where things are.
        assert "cannot be loaded" in await page.locator(".map-notice").inner_text()
        assert await page.locator(".graticule").count() > 0
        assert await page.locator(".leaflet-control-scale-line").inner_text()

        # Alert search: two low robots, one found by its id.
        await wait_for(page, "document.querySelector('#alert-count').textContent === '(2)'")
        await page.fill("#alert-search", "site-01")
        await wait_for(page, "document.querySelector('#alert-count').textContent === '(1 of 2)'")
        assert await page.locator("#alerts li.alert strong").all_inner_texts() == ["site-01: battery low"]
        await page.fill("#alert-search", "")

        # Track replay over a picked range: the path drawn is the robot's history in that range, point for point.
        await page.locator("#fleet tbody tr[data-robot='rover']").click()
        await wait_for(page, "window.fleetConsole.detail.chart?.robotId === 'rover'", SETTLED_WITHIN_MS)
        since, until = start + timedelta(minutes=30), start + timedelta(minutes=90)
        await page.select_option("#range", "custom")
        await page.fill("#range-from", since.strftime("%Y-%m-%dT%H:%M"))
        await page.fill("#range-to", until.strftime("%Y-%m-%dT%H:%M"))
        await page.click("#apply-range")
        expected = await history(api, "rover", since.isoformat(), until.isoformat())
        assert len(expected) == 60
        drawn = await wait_for(
            page,
            f"""(() => {{ const p = window.fleetConsole.map.path;
              const points = p ? p.getLatLngs().map((q) => [q.lat, q.lng]) : [];
              return points.length === {len(expected)} ? points : null }})()""",
            SETTLED_WITHIN_MS,
        )
        assert drawn == expected
        # A 0.01 V wobble is drawn on an axis at least 2 V tall, not blown up into a cliff.
        span = await page.evaluate(
            "() => { const v = window.fleetConsole.detail.chart.scales.V; return v.max - v.min }"
        )
        assert span >= 2
        # The slider walks it: at its end, the replay marker is on the range's last position.
        await page.evaluate(
            "() => { const s = document.querySelector('#replay');"
            " s.value = s.max; s.dispatchEvent(new Event('input')) }"
        )
        replayed = await page.evaluate(
            "() => { const q = window.fleetConsole.map.replay.getLatLng(); return [q.lat, q.lng] }"
        )
        assert replayed == expected[-1]
        shown_at = await page.get_attribute("#replay-time", "data-time")
        assert shown_at and datetime.fromisoformat(shown_at) == until - timedelta(minutes=1)
        assert "moving, battery" in await page.locator("#replay-time").inner_text()
        await page.screenshot(path=str(SCREENSHOTS / "console-replay.png"))

        # The system's preference (dark, here) until the operator picks the light theme, kept for the next visit.
        assert await page.evaluate("() => document.documentElement.dataset.theme") == "dark"
        await page.click("#theme")
        assert await page.evaluate("() => document.documentElement.dataset.theme") == "light"
        await page.screenshot(path=str(SCREENSHOTS / "console-light.png"))
        await page.reload()
        await wait_for(page, "document.documentElement.dataset.theme === 'light'")
