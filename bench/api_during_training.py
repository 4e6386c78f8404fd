"""Does the API stay fast while a model trains? Latency of cheap endpoints, idle vs during a training job.

Starts ``aaiti serve`` (one uvicorn process, SQLite, ``AAITI_JOBS__WORKERS`` worker processes, default 1) in a
temporary folder, signs in, then for each endpoint (``GET /api/health``, ``GET /api/auth/me``) measures
sequential request latency from this process (a minimal keep-alive HTTP/1.1 client) for ``--seconds`` while
idle, and again while a training job is in its fit phase (a random forest of 2,000 trees, then an LSTM),
cancelling the job after the measurement. Each "during" window is checked to have ended while the job ran.

Peer, measured in the same run: the same window while an unrelated single-threaded busy loop holds one core,
i.e. what any CPU-bound background process costs the API on this machine. Prints p50 / p99 per endpoint and
phase, and the p99 ratios to idle and to the peer. Goal (issue 5): during training / idle <= 3.
Run: ``.venv/bin/python bench/api_during_training.py [--seconds 8]``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

PASSWORD = "bench password 12345"
ENDPOINTS = ("/api/health", "/api/auth/me")
TRAININGS: dict[str, dict[str, Any]] = {
    "random_forest": {"algorithm": "random_forest", "parameters": {"n_estimators": 2000}, "dataset": "BTC-USD_1d"},
    "lstm": {
        "algorithm": "lstm",
        "parameters": {"epochs": 500, "patience": 100, "sequence_length": 48, "hidden_size": 64},
        "dataset": "BTC-USD_1h",
        "start_ts": 1_514_764_800_000,  # 2018-01-01: about two years of hourly candles
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    folder: Path, workers: int, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AAITI_")},
        "AAITI_ENV": "production",
        "AAITI_VAR_DIR": str(folder),
        "AAITI_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        "AAITI_DATABASE__URL": f"sqlite+aiosqlite:///{folder / 'aaiti.db'}",
        "AAITI_ADMIN_EMAIL": "bench@example.com",
        "AAITI_ADMIN_PASSWORD": PASSWORD,
        "AAITI_JOBS__WORKERS": str(workers),
        "AAITI_LOG__LEVEL": "WARNING",
        "AAITI_SERVER__STATIC_DIR": str(folder / "no-dashboard"),
        "AAITI_MARKET__SOURCE": "replay",
        **(extra_env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "aaiti", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not come up")


class RawClient:
    """A minimal HTTP/1.1 keep-alive client: a few microseconds of CPU per request, so on a small machine the
    load generator takes as little as possible from the server it measures (httpx costs ~0.3 ms a request)."""

    def __init__(self, base: str, token: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.token = token
        self.buffer = b""

    def get(self, path: str) -> int:
        request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {self.token}\r\n\r\n"
        self.sock.sendall(request.encode())
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            int(v) for k, _, v in (line.partition(":") for line in lines[1:]) if k.lower() == "content-length"
        )
        while len(rest) < length:
            rest += self._recv()
        self.buffer = rest[length:]
        return int(lines[0].split()[1])

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


def measure(base: str, token: str, seconds: float) -> dict[str, list[float]]:
    """Sequential requests on one fresh keep-alive connection for ``seconds``."""
    client = RawClient(base, token)
    samples: dict[str, list[float]] = {path: [] for path in ENDPOINTS}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for path in ENDPOINTS:
            start = time.perf_counter()
            status = client.get(path)
            samples[path].append(time.perf_counter() - start)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
    client.close()
    return samples


def quantile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] * 1000.0


def during_burner(base: str, token: str, seconds: float) -> dict[str, list[float]]:
    """The peer: the same window while an unrelated single-threaded busy loop holds one core — the floor any
    CPU-bound background work (ours or not) imposes on this machine."""
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        return measure(base, token, seconds)
    finally:
        burner.kill()
        burner.wait()


def during_training(http: httpx.Client, base: str, token: str, name: str, seconds: float) -> dict[str, list[float]]:
    body = {"name": f"bench {name}", **TRAININGS[name]}
    created = http.post("/api/models", json=body)
    created.raise_for_status()
    started = http.post(f"/api/models/{created.json()['id']}/train")
    started.raise_for_status()
    job_id = started.json()["job"]["id"]
    deadline = time.monotonic() + 120
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = http.get(f"/api/jobs/{job_id}").json()
        # Past the data loading and feature building: the worker is fitting.
        if job["status"] == "running" and job["progress"] > 0.05:
            break
        if job["status"] not in ("queued", "running"):
            raise RuntimeError(f"{name} training ended before the measurement: {job}")
        time.sleep(0.1)
    samples = measure(base, token, seconds)
    job = http.get(f"/api/jobs/{job_id}").json()
    still = job["status"] == "running"
    http.post(f"/api/jobs/{job_id}/cancel")
    if not still:
        print(f"warning: the {name} training ended during the measurement ({job['status']})", file=sys.stderr)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measurement window per phase")
    parser.add_argument("--workers", type=int, default=1, help="AAITI_JOBS__WORKERS")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="aaiti-bench-"))
    proc, base = start_server(folder, args.workers)
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            token = http.post("/api/auth/login", json={"email": "bench@example.com", "password": PASSWORD})
            token.raise_for_status()
            access = token.json()["access_token"]
            http.headers["Authorization"] = f"Bearer {access}"
            measure(base, access, 1.0)  # warm-up
            idle = measure(base, access, args.seconds)
            busy = {"a CPU burner (peer)": during_burner(base, access, args.seconds)}
            for name in TRAININGS:
                busy[f"{name} training"] = during_training(http, base, access, name, args.seconds)
        print(f"cores {os.cpu_count()}, job workers {args.workers}, {args.seconds:.0f} s per window, one client")
        header = f"{'endpoint':<16}{'phase':<34}{'n':>7}{'p50 ms':>9}{'p99 ms':>9}{'p99/idle':>10}{'p99/peer':>10}"
        print(header)
        print("-" * len(header))
        worst = 0.0
        for path in ENDPOINTS:
            idle_p99 = quantile(idle[path], 99)
            peer_p99 = quantile(busy["a CPU burner (peer)"][path], 99)
            print(f"{path:<16}{'idle':<34}{len(idle[path]):>7}{quantile(idle[path], 50):>9.2f}{idle_p99:>9.2f}")
            for name, samples in busy.items():
                p99 = quantile(samples[path], 99)
                if "training" in name:
                    worst = max(worst, p99 / idle_p99)
                print(
                    f"{path:<16}{'during ' + name:<34}{len(samples[path]):>7}{quantile(samples[path], 50):>9.2f}"
                    f"{p99:>9.2f}{p99 / idle_p99:>9.2f}x{p99 / peer_p99:>9.2f}x"
                )
        print(f"worst p99 during training / idle: {worst:.2f}x (goal <= 3x): {'met' if worst <= 3 else 'NOT met'}")
        print(
            f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (other work shares the cores)"
        )
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
