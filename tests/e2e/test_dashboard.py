"""The built dashboard in headless Chromium against a real uvicorn: login, deep links, no CSP violations, the
refresh cookie, live prices, model comparison and deletion.

Needs Debian's chromium (``make test`` installs it) and the built SPA (``make test`` builds it first).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import async_playwright

from aaiti.app import create_app
from aaiti.core.config import Settings
from aaiti.spa import DEFAULT_STATIC
from tests.conftest import PASSWORD, live_server, make_account
from tests.ml.api_support import create, train_and_wait

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@pytest.fixture
def built_spa() -> Path:
    if not (DEFAULT_STATIC / "index.html").is_file():
        pytest.fail("the dashboard is not built: run `make frontend` (make test builds it before pytest)")
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: apt-get install -y chromium (make test installs it)")
    return DEFAULT_STATIC


async def test_register_login_and_deep_link(built_spa: Path, settings: Settings) -> None:
    asgi = create_app(settings)
    problems: list[str] = []
    async with live_server(asgi) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page()

        def on_console(msg: Any) -> None:
            if msg.type == "error" and ("Content Security Policy" in msg.text or "Refused" in msg.text):
                problems.append(msg.text)

        page.on("console", on_console)
        await page.goto(f"{base}/register")
        await page.get_by_label("Email").fill("e2e@example.com")
        await page.get_by_label("Password", exact=True).fill(PASSWORD)
        await page.get_by_label("Confirm password").fill(PASSWORD)
        await page.get_by_role("button", name="Create account").click()
        # Registration signs the new user in and lands on the dashboard.
        await page.wait_for_url(lambda url: "/register" not in url and "/login" not in url, timeout=15000)
        await page.goto(f"{base}/jobs")
        await page.get_by_role("heading", name="Jobs").first.wait_for(timeout=15000)
        html = await page.content()
        assert "e2e@example.com" in html or "Jobs" in html
        await page.screenshot(path=str(Path(settings.var_dir) / "jobs.png"))

        # TOK-09: the refresh token is an HttpOnly __Host- cookie that script cannot see, and nothing is stored.
        (cookie,) = [c for c in await page.context.cookies() if c["name"] == "__Host-aaiti_refresh"]
        assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"], cookie["path"]) == (
            True,
            True,
            "Strict",
            "/",
        )
        assert await page.evaluate("document.cookie") == ""
        stored = await page.evaluate("JSON.stringify([Object.keys(localStorage), Object.keys(sessionStorage)])")
        assert stored == "[[],[]]"
        # A reload loses the in-memory access token; the cookie brings the session back (rotating itself).
        await page.reload()
        await page.get_by_test_id("current-user").filter(has_text="e2e@example.com").wait_for(timeout=15000)
        assert "/login" not in page.url
        (rotated,) = [c for c in await page.context.cookies() if c["name"] == "__Host-aaiti_refresh"]
        assert rotated["value"] != cookie["value"]
        # Logging out clears the cookie: a reload then shows the login page.
        await page.get_by_role("button", name="Log out").click()
        await page.wait_for_url(lambda url: "/login" in url, timeout=15000)
        assert [c for c in await page.context.cookies() if c["name"] == "__Host-aaiti_refresh"] == []
        await page.goto(f"{base}/jobs")
        await page.wait_for_url(lambda url: "/login" in url, timeout=15000)
        await browser.close()
    assert problems == [], problems


@pytest.fixture
def fast_replay_settings(settings: Settings) -> Settings:
    settings.market.source = "replay"
    settings.market.poll_interval_s = 0.2
    settings.market.replay_bar_seconds = 0.02
    return settings


async def test_dashboard_shows_live_replay_prices_moving(built_spa: Path, fast_replay_settings: Settings) -> None:
    asgi = create_app(fast_replay_settings)
    async with live_server(asgi) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page()
        await page.goto(f"{base}/register")
        await page.get_by_label("Email").fill("live@example.com")
        await page.get_by_label("Password", exact=True).fill(PASSWORD)
        await page.get_by_label("Confirm password").fill(PASSWORD)
        await page.get_by_role("button", name="Create account").click()
        await page.wait_for_url(lambda url: "/register" not in url and "/login" not in url, timeout=15000)
        await page.goto(f"{base}/")
        tile = page.get_by_test_id("price-tile-BTC")
        value = tile.get_by_test_id("price-value")
        await value.wait_for(timeout=15000)
        first = await value.inner_text()
        seen = {first}
        for _ in range(40):
            await page.wait_for_timeout(250)
            seen.add(await value.inner_text())
            if len(seen) >= 3:
                break
        assert len(seen) >= 3, f"the BTC price did not move: {seen}"
        assert "replay" in (await tile.inner_text()).lower(), "the tile names its source"
        await page.screenshot(path=str(Path(fast_replay_settings.var_dir) / "dashboard.png"))
        await browser.close()


async def test_compare_two_trained_models_then_delete_one(built_spa: Path, settings: Settings) -> None:
    """Real training jobs, then the dashboard: select both models, rank them, delete one after confirming."""
    asgi = create_app(settings)
    async with live_server(asgi) as base, async_playwright() as pw:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            owner = await make_account(client, asgi, "compare@example.com")
            naive = await create(client, owner, name="naive btc", algorithm="naive")
            linear = await create(client, owner, name="linear btc", algorithm="linear")
            for model in (naive, linear):
                await train_and_wait(client, owner, model["id"])
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page()
        await page.goto(f"{base}/login")
        await page.get_by_label("Email").fill(owner.email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(lambda url: "/login" not in url, timeout=15000)
        await page.goto(f"{base}/models")
        await page.get_by_label("select naive btc for comparison").check(timeout=15000)
        await page.get_by_label("select linear btc for comparison").check()
        await page.get_by_role("button", name="Compare (2)").click()
        ranking = page.get_by_role("table", name="Model ranking")
        await ranking.wait_for(timeout=15000)
        rows = ranking.locator("tbody tr")
        assert await rows.count() == 2
        assert "lower is better" in await page.content()

        await page.goto(f"{base}/models/{linear['id']}")
        await page.get_by_role("button", name="Delete").click()
        await page.get_by_role("dialog").get_by_role("button", name="Delete").click()
        await page.wait_for_url(lambda url: url.rstrip("/").endswith("/models"), timeout=15000)
        await page.get_by_role("link", name="naive btc").wait_for(timeout=15000)
        assert await page.get_by_role("link", name="linear btc").count() == 0
        await browser.close()
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            gone = await client.get(f"/api/models/{linear['id']}", headers=owner.headers)
            assert gone.status_code == 404
