"""Fan-out delivery latency of the live feed against a bare python-socketio broadcast, in the same run.

For each client count (100, 500, 1000 by default) two servers are measured one after the other, each a fresh
uvicorn process with the same options (uvloop, httptools, websockets-sansio):

- ``bare``: a python-socketio ``AsyncServer`` that, every ``--interval`` seconds, emits a ``price_update`` payload of
  the same shape (``symbol, price, change_24h_pct, as_of, stale, source, seq``) to room ``prices:BTC``, stamping
  ``as_of`` right before the emit. Clients connect without authentication and join the room on connect.
- ``aaiti``: the real application (``aaiti.app:app``) on replay at the same poll interval: JWT-authenticated
  sockets ``subscribe`` to ``prices:BTC`` and receive what the feed publishes (the poll, the quote cache, the
  coalescing rules, the gateway). ``as_of`` is stamped when the replay provider produced the tick, so our figure
  also includes the feed's own work between the tick and the emit.

Clients are minimal Engine.IO 4 / Socket.IO 5 websocket clients (the ``websockets`` library), spread over several
client processes (at most 250 sockets each) so that client-side parsing does not serialise in one event loop. Each
records the wall time a ``price_update`` frame arrives; latency = arrival − ``as_of`` (same host, same clock).
After all sockets are subscribed and a warm-up second, messages whose ``as_of`` falls in the measured window count
(the clients keep listening 3 s past the window so its last ticks arrive). Each client count is measured
``--repeat`` times per server, alternating which server goes first, and the samples are pooled.

Prints p50/p99 per server and client count, the ratio ours/bare, and whether p99 is within 1.5x of bare.
Everything shares the machine's cores (the issue's box has 2), so absolute numbers are an upper bound on latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench password 12345"
ROOM = "prices:BTC"
PER_PROCESS = 250
USERS = 10


# ---------------------------------------------------------------------------------------------- bare server


def build_bare(interval: float) -> Any:
    import socketio

    sio = socketio.AsyncServer(
        async_mode="asgi", max_http_buffer_size=64 * 1024, ping_interval=20, ping_timeout=20, logger=False
    )
    state = {"seq": 0, "price": 8700.0, "task": None}

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            state["seq"] += 1
            state["price"] = 8700.0 + (state["seq"] % 50)
            payload = {
                "symbol": "BTC",
                "price": state["price"],
                "change_24h_pct": 1.25,
                "as_of": datetime.now(UTC).isoformat(),
                "stale": False,
                "source": "bare",
                "seq": state["seq"],
            }
            await sio.emit("price_update", payload, room=ROOM)

    @sio.on("connect")
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await sio.enter_room(sid, ROOM)
        if state["task"] is None:
            state["task"] = asyncio.ensure_future(ticker())

    @sio.on("subscribe")
    async def subscribe(sid: str, data: Any) -> dict[str, Any]:
        return {"ok": True, "room": ROOM}

    return socketio.ASGIApp(sio)


def run_server(app: Any, port: int) -> None:
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


# -------------------------------------------------------------------------------------------------- clients


async def one_client(
    url: str, token: str | None, arrivals: list[tuple[float, str]], gate: asyncio.Semaphore, on_ready: Any
) -> None:
    """Connect (Engine.IO open, Socket.IO CONNECT with the token), subscribe with an ack, then record the arrival
    time of every ``price_update`` frame. At most ``gate`` sockets handshake at once."""
    from websockets.asyncio.client import connect

    async with gate:
        ws = await connect(url, max_size=1 << 20, open_timeout=60, ping_interval=None)
        opening = await ws.recv()
        if not (isinstance(opening, str) and opening.startswith("0")):
            raise RuntimeError(f"not an Engine.IO open packet: {opening!r}")
        await ws.send("40" + json.dumps({"token": token} if token else {}))
        answer = await ws.recv()
        if not (isinstance(answer, str) and answer.startswith("40")):
            raise RuntimeError(f"socket refused: {answer!r}")
        await ws.send("421" + json.dumps(["subscribe", {"room": ROOM}]))
        while True:
            msg = await ws.recv()
            if msg == "2":
                await ws.send("3")
            elif isinstance(msg, str) and msg.startswith("431"):
                if not json.loads(msg[3:])[0].get("ok"):
                    raise RuntimeError(f"subscribe refused: {msg}")
                break
    on_ready()
    async with ws:
        async for msg in ws:
            arrived = time.time()
            if msg == "2":
                await ws.send("3")
            elif isinstance(msg, str) and msg.startswith('42["price_update"'):
                arrivals.append((arrived, msg))


async def client_process(url: str, n: int, tokens: list[str]) -> None:
    arrivals: list[tuple[float, str]] = []
    gate = asyncio.Semaphore(50)
    subscribed = 0
    ready = asyncio.Event()

    def on_ready() -> None:
        nonlocal subscribed
        subscribed += 1
        if subscribed == n:
            ready.set()

    tasks = [
        asyncio.ensure_future(one_client(url, tokens[i % len(tokens)] if tokens else None, arrivals, gate, on_ready))
        for i in range(n)
    ]
    waiter = asyncio.ensure_future(ready.wait())
    await asyncio.wait([waiter, *tasks], timeout=300, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        if task.done() and task.exception() is not None:
            raise RuntimeError("a client failed") from task.exception()
    if not ready.is_set():
        raise RuntimeError(f"only {subscribed} of {n} clients subscribed")
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    for task in tasks:
        task.cancel()
    samples = []
    for arrived, msg in arrivals:
        payload = json.loads(msg[2:])[1]
        as_of = datetime.fromisoformat(payload["as_of"]).timestamp()
        samples.append((as_of, arrived - as_of))
    print(json.dumps(samples), flush=True)


# ------------------------------------------------------------------------------------------- orchestration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def measure(port: int, clients: int, tokens: list[str], seconds: float, env: dict[str, str]) -> tuple[list[float], int]:
    """Latencies (seconds) of messages stamped inside the measured window, and how many ticks that window held."""
    url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    procs = []
    remaining = clients
    while remaining > 0:
        n = min(PER_PROCESS, remaining)
        remaining -= n
        cmd = [sys.executable, __file__, "--client", url, "--count", str(n), "--tokens", ",".join(tokens)]
        procs.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env))
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"client process failed: {line!r}")
    time.sleep(1.0)
    window_start = time.time()
    time.sleep(seconds)
    window_end = time.time()
    time.sleep(3.0)  # let the window's last ticks arrive before the clients stop listening
    samples: list[tuple[float, float]] = []
    for proc in procs:
        out, _ = proc.communicate("stop\n", timeout=120)
        samples += [tuple(s) for s in json.loads(out.strip().splitlines()[-1])]  # type: ignore[misc]
    kept = [lat for as_of, lat in samples if window_start <= as_of <= window_end]
    ticks = len({as_of for as_of, _ in samples if window_start <= as_of <= window_end})
    return kept, ticks


def summarise(latencies: list[float], ticks: int, clients: int) -> dict[str, float]:
    return {
        "samples": len(latencies),
        "ticks": ticks,
        "delivered": len(latencies) / max(1, ticks * clients),
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies, default=math.nan) * 1000,
    }


def serve_and_measure(
    server: str, clients: int, seconds: float, interval: float, env: dict[str, str], register: bool
) -> tuple[list[float], int]:
    port = free_port()
    cmd = [sys.executable, __file__, f"--serve-{server}", "--port", str(port), "--interval", str(interval)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        tokens: list[str] = []
        if server == "aaiti":
            base = f"http://127.0.0.1:{port}"
            for i in range(USERS):
                email = f"bench{i}@example.com"
                if register:
                    httpx.post(f"{base}/api/auth/register", json={"email": email, "password": PASSWORD})
                login = httpx.post(f"{base}/api/auth/login", json={"email": email, "password": PASSWORD})
                tokens.append(login.json()["access_token"])
        return measure(port, clients, tokens, seconds, env)
    finally:
        proc.terminate()
        proc.wait(30)


def run(counts: list[int], seconds: float, interval: float, repeat: int) -> dict[str, dict[str, dict[str, float]]]:
    """Each repeat measures both servers, alternating which goes first; samples are pooled per server."""
    work = Path(tempfile.mkdtemp(prefix="aaiti-bench-feed-"))
    env = {
        **os.environ,
        "AAITI_ENV": "production",
        "AAITI_VAR_DIR": str(work),
        "AAITI_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        "AAITI_DATABASE__URL": f"sqlite+aiosqlite:///{work / 'bench.db'}",
        "AAITI_LOG__LEVEL": "WARNING",
        "AAITI_JOBS__WORKERS": "1",
        "AAITI_AUTH__LOGIN_MAX_PER_IP": "1000",
        "AAITI_MARKET__SOURCE": "replay",
        "AAITI_MARKET__LOAD_BUNDLED": "false",
        "AAITI_MARKET__POLL_INTERVAL_S": str(interval),
        "AAITI_MARKET__REPLAY_BAR_SECONDS": "0.05",
        "AAITI_MARKET__SYMBOLS": '["BTC"]',
    }
    subprocess.run([sys.executable, "-m", "aaiti", "migrate"], env=env, check=True, cwd=ROOT, capture_output=True)
    results: dict[str, dict[str, dict[str, float]]] = {}
    registered = False
    try:
        for clients in counts:
            pooled: dict[str, list[float]] = {"bare": [], "aaiti": []}
            ticks: dict[str, int] = {"bare": 0, "aaiti": 0}
            for r in range(repeat):
                order = ("bare", "aaiti") if r % 2 == 0 else ("aaiti", "bare")
                for server in order:
                    latencies, n = serve_and_measure(server, clients, seconds, interval, env, not registered)
                    registered = registered or server == "aaiti"
                    pooled[server] += latencies
                    ticks[server] += n
                    one = summarise(latencies, n, clients)
                    print(
                        f"{clients:>6} {server:<6} {r + 1:>3} {int(one['samples']):>8} {one['delivered']:>9.3f} "
                        f"{one['p50_ms']:>8.2f} {one['p99_ms']:>8.2f} {one['max_ms']:>8.2f}",
                        flush=True,
                    )
            results[str(clients)] = {name: summarise(pooled[name], ticks[name], clients) for name in pooled}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per server and count")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between ticks (both servers)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per server and count (alternating order)")
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-aaiti", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tokens", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        run_server(build_bare(args.interval), args.port)
        return
    if args.serve_aaiti:
        from aaiti.app import create_app

        run_server(create_app(), args.port)
        return
    if args.client:
        tokens = [t for t in args.tokens.split(",") if t]
        asyncio.run(client_process(args.client, args.count, tokens))
        return
    print(f"{'nproc':>6} {os.cpu_count()}; tick every {args.interval} s; {args.seconds} s measured per run")
    columns = f"{'samples':>8} {'delivered':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    print(f"{'client':>6} {'server':<6} {'run':>3} {columns}")
    results = run(args.clients, args.seconds, args.interval, args.repeat)
    print("\npooled over the runs:")
    print(f"{'client':>6} {'server':<6} {'samples':>8} {'delivered':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for clients, pair in results.items():
        for name, r in pair.items():
            print(
                f"{clients:>6} {name:<6} {int(r['samples']):>8} {r['delivered']:>9.3f} "
                f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['max_ms']:>8.2f}"
            )
    met = True
    for clients, pair in results.items():
        ratio50 = pair["aaiti"]["p50_ms"] / pair["bare"]["p50_ms"]
        ratio99 = pair["aaiti"]["p99_ms"] / pair["bare"]["p99_ms"]
        met = met and ratio99 <= 1.5
        print(f"{clients:>5} clients: p50 ours/bare {ratio50:.2f}x, p99 ours/bare {ratio99:.2f}x")
    print(f"goal (p99 within 1.5x of the bare broadcast at every count): {'met' if met else 'NOT met'}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
