"""Login flood (RELIABILITY §7.3, AUTH-04, AUTH-08): do cheap endpoints stay fast while logins pour in?

Starts ``aaiti serve`` (one uvicorn process, SQLite) and measures sequential request latency of ``GET /api/health``
and ``GET /api/auth/me`` from this process (a minimal keep-alive client) for ``--seconds``:

1. idle;
2. during a flood of 50 login attempts per second with wrong passwords from 10 client addresses (127.0.0.2 to
   127.0.0.11, one constant-rate sender process), against the default limits;
3. the peer, measured in the same run: the same flood against a server whose login limits are lifted, i.e. every
   attempt costs an argon2 verification (hashing still runs off the event loop, at most
   ``AAITI_AUTH__HASH_CONCURRENCY`` at a time).

Prints p50 / p99 / max per endpoint and phase and the flood's answers by status. Goals (§7.3): excess attempts get
429; other endpoints' p99 < 1 s during the flood; no stall > 100 ms (the max latency of a cheap request is an
upper bound on the event loop's longest stall). Run: ``.venv/bin/python bench/login_flood.py [--seconds 8]``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from api_during_training import PASSWORD, measure, quantile, start_server

SENDERS = [f"127.0.0.{i}" for i in range(2, 12)]
RATE_PER_SECOND = 50


async def _flood(base: str, seconds: float) -> Counter[int]:
    """Constant-rate wrong-password logins, spread round-robin over the sender addresses and a few accounts."""
    clients = [
        httpx.AsyncClient(base_url=base, timeout=30, transport=httpx.AsyncHTTPTransport(local_address=address))
        for address in SENDERS
    ]
    statuses: Counter[int] = Counter()

    async def attempt(n: int) -> None:
        email = "bench@example.com" if n % 2 else f"nobody{n % 7}@example.com"
        try:
            res = await clients[n % len(clients)].post(
                "/api/auth/login", json={"email": email, "password": f"wrong {n}"}
            )
            statuses[res.status_code] += 1
        except httpx.TransportError:
            statuses[0] += 1

    tasks = []
    started = time.monotonic()
    for n in range(int(seconds * RATE_PER_SECOND)):
        delay = started + n / RATE_PER_SECOND - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(attempt(n)))
    await asyncio.gather(*tasks)
    for client in clients:
        await client.aclose()
    return statuses


def _flood_process(base: str, seconds: float, out: multiprocessing.Queue[dict[int, int]]) -> None:
    out.put(dict(asyncio.run(_flood(base, seconds))))


def _token(base: str) -> str:
    res = httpx.post(f"{base}/api/auth/login", json={"email": "bench@example.com", "password": PASSWORD})
    res.raise_for_status()
    return str(res.json()["access_token"])


def _report(label: str, samples: dict[str, list[float]]) -> dict[str, float]:
    worst = {}
    for path, values in samples.items():
        p50, p99, peak = quantile(values, 50), quantile(values, 99), max(values) * 1000
        print(f"{label:<22} {path:<16} n={len(values):>6}  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  max {peak:7.1f} ms")
        worst[path] = p99
        worst[f"{path} max"] = peak
    return worst


def run_phase(folder: Path, label: str, seconds: float, extra_env: dict[str, str]) -> dict[str, float]:
    proc, base = start_server(folder, workers=1, extra_env=extra_env)
    try:
        token = _token(base)
        measure(base, token, 1.0)  # warm-up
        results = {}
        if label == "default limits":
            results.update({f"idle {k}": v for k, v in _report("idle", measure(base, token, seconds)).items()})
        queue: multiprocessing.Queue[dict[int, int]] = multiprocessing.Queue()
        sender = multiprocessing.Process(target=_flood_process, args=(base, seconds + 1.0, queue))
        sender.start()
        time.sleep(0.5)  # the flood is under way before the window opens
        during = measure(base, token, seconds)
        statuses = queue.get(timeout=120)
        sender.join(30)
        results.update({f"flood {k}": v for k, v in _report(f"flood, {label}", during).items()})
        answered = ", ".join(f"{code or 'no answer'}: {count}" for code, count in sorted(statuses.items()))
        print(f"{'':<22} flood answers: {answered}")
        results["flood_429"] = float(statuses.get(429, 0))
        results["flood_5xx"] = float(sum(c for code, c in statuses.items() if code >= 500 or code == 0))
        return results
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    if sys.platform != "linux":
        raise SystemExit("needs Linux: the senders bind 127.0.0.2-11, which only Linux routes to loopback")
    work = Path(tempfile.mkdtemp(prefix="aaiti-flood-"))
    try:
        ours = run_phase(work / "limited", "default limits", args.seconds, {})
        peer = run_phase(
            work / "unlimited",
            "limits lifted (peer)",
            args.seconds,
            {"AAITI_AUTH__LOGIN_MAX_PER_IP": "1000000", "AAITI_AUTH__LOGIN_MAX_PER_ACCOUNT": "1000000"},
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for path in ("/api/health", "/api/auth/me"):
        ratio = ours[f"flood {path}"] / ours[f"idle {path}"]
        print(
            f"{path}: p99 during flood / idle {ratio:.2f}; ours / limits-lifted peer "
            f"{ours[f'flood {path}'] / peer[f'flood {path}']:.2f}"
        )
    worst_p99 = max(ours["flood /api/health"], ours["flood /api/auth/me"])
    worst_max = max(ours["flood /api/health max"], ours["flood /api/auth/me max"])
    goal = ours["flood_429"] > 0 and ours["flood_5xx"] == 0 and worst_p99 < 1000 and worst_max < 100
    print(
        f"goal (429 for the excess, no 5xx, p99 < 1 s, no request > 100 ms during the flood): "
        f"{'met' if goal else 'NOT met'} (worst p99 {worst_p99:.1f} ms, worst max {worst_max:.1f} ms)"
    )


if __name__ == "__main__":
    main()
