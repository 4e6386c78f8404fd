"""Throughput and latency of an authenticated, database-backed read endpoint, against two peers measured in the
same run on the same loopback with the same load generator (wrk, 1 thread, 64 connections):

- ``bare``: a FastAPI endpoint returning a constant (the framework ceiling);
- ``raw``: a FastAPI endpoint doing one SELECT through a single raw aiosqlite connection (no ORM, no auth);
- ``ours``: ``GET /api/auth/me`` — JWT verification, token-version check against the database, the user row.

Each server is one uvicorn process (asyncio loop + httptools, as ``aaiti serve`` runs: uvloop served a few
keep-alive connections late under this load, p99 230-290 ms against 32-36 ms, at equal throughput).
Prints req/s and p50/p99 per server and the ratios.
Goal (issue 2): ours >= 3,000 req/s with p99 <= 50 ms at 64 connections. Needs ``wrk`` (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench password 12345"
SECRET = secrets.token_urlsafe(48)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def serve(app: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        "asyncio",
        "--http",
        "httptools",
    ]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> dict[str, float]:
    """A 2-second warm-up (lazy initialisation, caches), then the measured run."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    warm = ["wrk", "-t1", f"-c{connections}", "-d2s"]
    for key, value in headers.items():
        warm += ["-H", f"{key}: {value}"]
    subprocess.run([*warm, url], capture_output=True, check=True)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for key, value in headers.items():
        cmd += ["-H", f"{key}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p50_ms": pct("50"), "p99_ms": pct("99"), "errors": float(non2xx.group(1)) if non2xx else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aaiti-bench-"))
    db = work / "bench.db"
    env = {
        **os.environ,
        "AAITI_ENV": "production",
        "AAITI_VAR_DIR": str(work),
        "AAITI_AUTH__JWT_SECRET": SECRET,
        "AAITI_DATABASE__URL": f"sqlite+aiosqlite:///{db}",
        "AAITI_ADMIN_EMAIL": "bench@example.com",
        "AAITI_ADMIN_PASSWORD": PASSWORD,
        "AAITI_LOG__LEVEL": "WARNING",
        # the endpoint alone: no first-start history import or upstream polling competing for the CPU
        "AAITI_MARKET__SOURCE": "replay",
        "AAITI_MARKET__LOAD_BUNDLED": "false",
        "AAITI_JOBS__WORKERS": "1",
        "PYTHONPATH": str(ROOT / "bench"),
    }
    subprocess.run([sys.executable, "-m", "aaiti", "migrate"], env=env, check=True, cwd=ROOT, capture_output=True)
    results: dict[str, dict[str, float]] = {}
    port = free_port()
    proc = serve("aaiti.app:app", port, env)
    try:
        wait_up(f"http://127.0.0.1:{port}/api/health")
        tokens = httpx.post(
            f"http://127.0.0.1:{port}/api/auth/login", json={"email": "bench@example.com", "password": PASSWORD}
        ).json()
        me = httpx.get(
            f"http://127.0.0.1:{port}/api/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        ).json()
        results["ours"] = wrk(
            f"http://127.0.0.1:{port}/api/auth/me",
            args.seconds,
            args.connections,
            {"Authorization": f"Bearer {tokens['access_token']}"},
        )
    finally:
        proc.terminate()
        proc.wait(30)
    env["BENCH_DB"] = str(db)
    env["BENCH_USER_ID"] = me["id"].replace("-", "")
    for name, app, path in (("bare", "_peers_api:bare", "/ping"), ("raw", "_peers_api:raw", "/me")):
        port = free_port()
        proc = serve(app, port, env)
        try:
            wait_up(f"http://127.0.0.1:{port}{path}")
            results[name] = wrk(f"http://127.0.0.1:{port}{path}", args.seconds, args.connections, {})
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"{'server':<6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name in ("bare", "raw", "ours"):
        r = results[name]
        print(f"{name:<6} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['errors']:>8.0f}")
    ours = results["ours"]
    print(
        f"ours/bare throughput {ours['rps'] / results['bare']['rps']:.2f}, "
        f"ours/raw throughput {ours['rps'] / results['raw']['rps']:.2f}"
    )
    goal = ours["rps"] >= 3000 and ours["p99_ms"] <= 50
    print(f"goal (>= 3000 req/s, p99 <= 50 ms at {args.connections} connections): {'met' if goal else 'NOT met'}")
    print(json.dumps(results))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
