"""HTTP hygiene: error shape, security headers, CORS allowlist, body cap, JSON 404s, 500 without leaks,
metrics exposition, health, and the SPA fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import Account


async def test_security_headers_on_api(client: httpx.AsyncClient, alice: Account) -> None:
    r = await client.get("/api/auth/me", headers=alice.headers)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-request-id"]


async def test_unknown_api_path_is_json_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/does/not/exist")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"] == "not_found"


async def test_method_not_allowed_is_json(client: httpx.AsyncClient) -> None:
    r = await client.request("TRACE", "/api/health")
    assert r.status_code in (404, 405)
    assert r.json()["error"] in ("method_not_allowed", "not_found")
    r = await client.delete("/api/health")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


async def test_body_size_cap(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/auth/login", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["error"] == "payload_too_large"


async def test_bad_bodies_are_4xx(client: httpx.AsyncClient) -> None:
    for content, ctype in [
        (b"\xff\xfe", "application/json"),
        (b"{", "application/json"),
        (b"email=a", "text/plain"),
        (b'{"email": "a\\u0000b", "password": 1}', "application/json"),
    ]:
        r = await client.post("/api/auth/login", content=content, headers={"content-type": ctype})
        assert 400 <= r.status_code < 500, (content, r.status_code)
        assert "error" in r.json()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"server": {"cors_origins": ["https://app.example"], "static_dir": "/nonexistent-aaiti-dist"}}


async def test_cors_exact_allowlist(client: httpx.AsyncClient) -> None:
    headers = {"Access-Control-Request-Method": "GET"}
    good = await client.options("/api/health", headers={**headers, "Origin": "https://app.example"})
    assert good.headers.get("access-control-allow-origin") == "https://app.example"
    for origin in ("https://evil.example", "null"):
        bad = await client.options("/api/health", headers={**headers, "Origin": origin})
        assert "access-control-allow-origin" not in bad.headers
        simple = await client.get("/api/health", headers={"Origin": origin})
        assert "access-control-allow-origin" not in simple.headers


async def test_internal_error_leaks_nothing(
    client: httpx.AsyncClient, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aaiti.admin import service

    async def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret internal detail /etc/passwd")

    monkeypatch.setattr(service, "list_settings", boom)
    r = await client.get("/api/settings", headers=alice.headers)
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "internal" and body["detail"] == "internal error"
    assert body["request_id"] == r.headers["x-request-id"]
    assert "passwd" not in r.text


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/health")).json() == {"status": "ok"}
    ready = await client.get("/api/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"]["ok"] is True
    assert ready.json()["checks"]["jobs"]["ok"] is True


async def test_ready_reports_a_broken_database(
    client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down() -> None:
        raise OSError("disk unavailable")

    monkeypatch.setattr(app.fastapi.state.core.db, "ping", down)
    r = await client.get("/api/health/ready")
    assert r.status_code == 503
    assert r.json()["checks"]["database"]["ok"] is False
    assert "disk unavailable" in r.json()["checks"]["database"]["detail"]


async def test_metrics_exposition(client: httpx.AsyncClient, alice: Account, app: Any) -> None:
    await client.get("/api/auth/me", headers=alice.headers)
    for i in range(5):
        await client.get(f"/api/jobs/{i}-not-a-uuid", headers=alice.headers)
    text = (await client.get("/metrics")).text
    assert 'handler="/api/auth/me"' in text
    assert 'handler="/api/jobs/{job_id}"' in text, "labels use the route template, never the raw path"
    assert "not-a-uuid" not in text
    assert "http_request_duration_seconds_bucket" in text
    assert 'http_requests_total{handler="/api/jobs/{job_id}",method="GET",status="422"}' in text
    assert "aaiti_socket_connections" in text
    assert "process_cpu_seconds_total" in text or "python_gc_objects_collected_total" in text
    outsider = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 1)), base_url="http://t")
    async with outsider:
        assert (await outsider.get("/metrics")).status_code == 401


async def test_root_without_build_explains(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 200
    assert "not" in r.text and "built" in r.text


async def test_spa_fallback(tmp_path: Path, settings: Any) -> None:
    from asgi_lifespan import LifespanManager

    from aaiti.app import create_app

    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><div id=root>spa</div>")
    (dist / "assets" / "index-abc.js").write_text("console.log(1)")
    settings.server.static_dir = dist
    asgi = create_app(settings)
    async with (
        LifespanManager(asgi),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t") as c,
    ):
        for path in ("/", "/bots/42", "/models"):
            r = await c.get(path)
            assert r.status_code == 200 and "spa" in r.text, path
            assert r.headers["cache-control"] == "no-cache"
            assert "object-src 'none'" in r.headers["content-security-policy"]
        asset = await c.get("/assets/index-abc.js")
        assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
        assert (await c.get("/assets/missing.js")).status_code == 404
        assert (await c.get("/favicon.ico")).status_code == 404
        api = await c.get("/api/nope")
        assert api.status_code == 404 and api.json()["error"] == "not_found"
        assert (await c.get("/api/health")).json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("env", "enabled", "served"),
    [("production", None, False), ("production", True, True), ("test", None, True), ("dev", False, False)],
)
async def test_api_docs_are_off_in_production_unless_enabled(
    tmp_path: Path, db_path: Path, env: str, enabled: bool | None, served: bool
) -> None:
    """AC-05: /docs and /openapi.json are public pages, so production serves them only when asked to."""
    from asgi_lifespan import LifespanManager
    from tests.conftest import make_settings

    from aaiti.app import create_app

    # Production defaults would load the bundled history and try CoinGecko: the replay alone, as in env=test.
    settings = make_settings(
        tmp_path, db_path, env=env, server={"docs_enabled": enabled}, market={"source": "replay", "load_bundled": False}
    )
    asgi = create_app(settings)
    async with (
        LifespanManager(asgi, startup_timeout=30, shutdown_timeout=30),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t") as c,
    ):
        docs = await c.get("/docs")
        assert ("swagger-ui" in docs.text) is served  # when off, /docs is just a dashboard route (or a 404)
        schema = await c.get("/openapi.json")
        assert (schema.status_code == 200 and "openapi" in schema.json()) is served, schema.status_code
