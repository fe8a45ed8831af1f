"""/docs works without internet: Swagger UI comes from the API itself, pinned, and lists every operation."""

from __future__ import annotations

import asyncpg

from app.platform.settings import Settings
from tests.support.browser import SCREENSHOTS, block_internet, offline_browser
from tests.support.servers import live_api


async def test_swagger_ui_renders_with_the_internet_blocked(settings: Settings, conn: asyncpg.Connection) -> None:
    blocked: list[str] = []
    async with live_api(settings) as base, offline_browser() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 1600})
        await block_internet(page, blocked)
        await page.goto(f"{base}/docs", wait_until="networkidle")
        await page.wait_for_selector(".opblock", timeout=15_000)
        operations = await page.locator(".opblock-summary-path").all_inner_texts()
        authorize = await page.locator("button.authorize").count()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "docs-offline.png"), full_page=False)
    assert blocked == []  # the page asked for nothing beyond the API
    assert any("/telemetry" in path for path in operations) and any("/robots" in path for path in operations)
    assert authorize == 1  # the bearer scheme gives Swagger UI its Authorize button
