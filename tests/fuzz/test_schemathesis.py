"""Property-based fuzzing of every documented operation (Schemathesis over a real uvicorn): no generated
request, valid or not, may produce a server error. A 503 that declares itself ``unavailable`` (a dependency
that cannot serve, with the reason) is a correct answer, not a crash. Operations that end the fuzzing user's
own session are excluded."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings

from aaiti.app import create_app
from tests.conftest import PASSWORD, free_port, make_settings

EXCLUDED = {("POST", "/api/auth/logout"), ("POST", "/api/auth/change-password")}


class _Server:
    def __init__(self, tmp: Path, template_db: Path) -> None:
        db = tmp / "fuzz.db"
        shutil.copy(template_db, db)
        overrides: dict[str, Any] = {
            "market": {"load_bundled": False, "source": "replay"},
            "auth": {
                "jwt_secret": secrets.token_urlsafe(48),
                "login_max_per_account": 10_000,
                "login_max_per_ip": 10_000,
            },
        }
        self.port = free_port()
        self.config = uvicorn.Config(
            create_app(make_settings(tmp, db, **overrides)),
            host="127.0.0.1",
            port=self.port,
            lifespan="on",
            log_config=None,
            access_log=False,
        )
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("fuzz server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Iterator[tuple[str, str]]:
    with _Server(tmp_path_factory.mktemp("fuzz"), template_db) as base:
        with httpx.Client(base_url=base) as http:
            http.post("/api/auth/register", json={"email": "fuzz@example.com", "password": PASSWORD})
            token = http.post("/api/auth/login", json={"email": "fuzz@example.com", "password": PASSWORD}).json()
        yield base, token["access_token"]


def _error_code(response: Any) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


def test_no_server_errors(fuzz_target: tuple[str, str]) -> None:
    base, token = fuzz_target
    loaded = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    operations = 0
    calls = 0
    for result in loaded.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in EXCLUDED:
            continue
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
        )
        def run(case: Any) -> None:
            nonlocal calls
            calls += 1
            response = case.call(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            declared_unavailable = response.status_code == 503 and _error_code(response) == "unavailable"
            if response.status_code >= 500 and not declared_unavailable:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

        run()
    assert operations >= 15, "the schema lists too few operations: discovery failed"
    assert calls >= operations * 5, f"only {calls} requests for {operations} operations"
    print(f"schemathesis: {operations} operations, {calls} requests")
    assert not failures, "\n".join(failures[:20])
