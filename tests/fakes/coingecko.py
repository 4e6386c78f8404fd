"""A fake CoinGecko API v3 (Starlette) for tests over real HTTP.

It serves the recorded/derived bodies in ``tests/fixtures/coingecko`` (copied from ``shared/coingecko``; see the
README there), with ``/simple/price`` built live from :attr:`FakeCoinGecko.prices` and its own clock so a test can
move a price or time. Every request is recorded (endpoint template, query, headers, clock time), and any fault of
RELIABILITY §7.2 "External API" can be injected per endpoint, once, N times or until cleared:

======================  =================================================================================
kind                    effect
======================  =================================================================================
``429``                 429 with the recorded JSON body; ``retry_after`` (str) sets the header if given
``429_date``            429 with ``Retry-After`` as an HTTP-date ``seconds`` ahead of the fake clock
``429_html``            429 with a Cloudflare-style HTML page and no header
``status``              any ``code`` (403, 500, 502, 503, 504, ...); 403 gets the CDN ``error code: 1020``
``slow_drip``           the good body, one byte every ``interval`` seconds (default 1.0)
``reset``               headers + half the body, then the connection is dropped
``html_200``            200 with an HTML page
``truncated``           200 with the good JSON cut in the middle
``schema``              200 with one value broken: ``mutation`` = missing | string | null | zero | negative |
                        huge (1e300)
``jump``                ``/simple/price`` prices multiplied by ``factor`` (default 1000)
``empty``               ``{}`` / ``[]`` / empty arrays
``oversized``           a valid-looking JSON body of ``size`` bytes, streamed; ``declare`` adds Content-Length
``redirect``            302 to ``/redirected`` on this server (counted, so tests can show it is not followed)
``delay``               the good answer after ``seconds``
======================  =================================================================================

``outage = True`` answers 503 to everything until set back to False; ``bodies[endpoint] = ...`` replaces the
fixture an endpoint serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from aaiti.core.clock import Clock, FrozenClock

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "coingecko"
#: The fixed "now" of every derived fixture (README): 2021-07-17T21:00:43.217Z.
FAKE_NOW_MS = 1_626_555_643_217
FAKE_NOW = datetime.fromtimestamp(FAKE_NOW_MS / 1000, tz=UTC)
DAY_MS = 86_400_000
OHLC_DAYS = {"1", "7", "14", "30", "90", "180", "365", "max"}

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
    b"<body>Checking your browser before accessing api.coingecko.com.</body></html>"
)

Endpoint = str  # a path template such as "/coins/{id}/ohlc"


@dataclass
class Fault:
    kind: str
    endpoint: Endpoint | None
    remaining: int | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestRecord:
    endpoint: Endpoint
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    clock_ms: int
    wall: float


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


class _AbortMidBody(Response):
    """Sends the headers and part of the body, then fails the ASGI call so the server drops the connection."""

    def __init__(self, body: bytes) -> None:
        super().__init__(content=None)
        self._full = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(self._full)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self._full[: len(self._full) // 2], "more_body": True})
        raise ConnectionResetError("fake CoinGecko: connection reset mid-body")


class FakeCoinGecko:
    """The fake's state and ASGI app. ``clock`` is the fake's notion of now (share it with the client under test)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or FrozenClock(FAKE_NOW)
        simple = load_fixture("simple_price.json")
        self.prices: dict[str, float] = {coin: float(v["usd"]) for coin, v in simple.items()}
        self.change_24h: dict[str, float | None] = {coin: v["usd_24h_change"] for coin, v in simple.items()}
        self.coins: list[dict[str, Any]] = load_fixture("coins_list.json")
        self.ranks: dict[str, int] = {c["id"]: c["market_cap_rank"] for c in load_fixture("coins_markets.json")}
        self.faults: list[Fault] = []
        self.outage = False
        self.requests: list[RequestRecord] = []
        self.counts: Counter[Endpoint] = Counter()
        #: ``"public"`` mirrors api.coingecko.com, ``"pro"`` pro-api.coingecko.com (key rules of the README).
        self.host_kind = "public"
        self.required_key: str | None = None
        self.base_url = ""
        #: a body to serve instead of the fixture for an endpoint (e.g. data with another granularity)
        self.bodies: dict[Endpoint, Any] = {}
        #: bytes the ``oversized`` fault handed to the server before the client hung up
        self.bytes_streamed = 0
        routes = [
            Route("/api/v3/ping", self._route("/ping", self._ping)),
            Route("/api/v3/simple/price", self._route("/simple/price", self._simple_price)),
            Route("/api/v3/coins/list", self._route("/coins/list", self._coins_list)),
            Route("/api/v3/coins/{id}/market_chart", self._route("/coins/{id}/market_chart", self._market_chart)),
            Route("/api/v3/coins/{id}/ohlc", self._route("/coins/{id}/ohlc", self._ohlc)),
            Route("/api/v3/search", self._route("/search", self._search)),
            Route("/redirected", self._route("/redirected", self._ping)),
        ]
        self.app = Starlette(routes=routes)

    # ---------------------------------------------------------------------------------------------- control

    def inject(self, kind: str, *, endpoint: Endpoint | None = None, times: int | None = 1, **params: Any) -> None:
        """Queue a fault for the next ``times`` matching requests (``None`` = until :meth:`clear_faults`)."""
        self.faults.append(Fault(kind, endpoint, times, params))

    def clear_faults(self) -> None:
        self.faults.clear()
        self.outage = False

    def set_price(self, coin: str, price: float, change_24h: float | None = None) -> None:
        self.prices[coin] = price
        if change_24h is not None:
            self.change_24h[coin] = change_24h

    def count(self, endpoint: Endpoint | None = None) -> int:
        return sum(self.counts.values()) if endpoint is None else self.counts[endpoint]

    def now_ms(self) -> int:
        return round(self.clock.now().timestamp() * 1000)

    def _take_fault(self, endpoint: Endpoint) -> Fault | None:
        for fault in self.faults:
            if fault.endpoint in (None, endpoint):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    # --------------------------------------------------------------------------------------------- plumbing

    def _route(
        self, endpoint: Endpoint, build: Callable[[Request], tuple[int, Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            self.counts[endpoint] += 1
            self.requests.append(
                RequestRecord(
                    endpoint,
                    request.url.path,
                    dict(request.query_params),
                    {k.lower(): v for k, v in request.headers.items()},
                    self.now_ms(),
                    time.monotonic(),
                )
            )
            if self.outage:
                return Response(b"Service Unavailable", status_code=503, media_type="text/plain")
            refused = self._check_key(request)
            if refused is not None:
                return refused
            if endpoint in self.bodies:
                return JSONResponse(self.bodies[endpoint])
            fault = self._take_fault(endpoint)
            if fault is None:
                status, body = build(request)
                return JSONResponse(body, status_code=status)
            return await self._apply(fault, endpoint, request, build)

        return handler

    def _check_key(self, request: Request) -> Response | None:
        demo, pro = request.headers.get("x-cg-demo-api-key"), request.headers.get("x-cg-pro-api-key")
        if self.host_kind == "public" and pro is not None:
            return JSONResponse(load_fixture("error_400_pro_key_on_public_host_10010.json"), status_code=400)
        if self.host_kind == "pro":
            if demo is not None:
                return JSONResponse(load_fixture("error_400_demo_key_on_pro_host_10011.json"), status_code=400)
            if pro is None:
                return JSONResponse(load_fixture("error_401_missing_api_key_10002.json"), status_code=401)
        if self.required_key is not None and self.required_key not in (demo, pro):
            return JSONResponse(load_fixture("error_401_missing_api_key_10002.json"), status_code=401)
        return None

    async def _apply(
        self, fault: Fault, endpoint: Endpoint, request: Request, build: Callable[[Request], tuple[int, Any]]
    ) -> Response:
        p = fault.params
        kind = fault.kind
        if kind == "429":
            headers = {} if p.get("retry_after") is None else {"retry-after": str(p["retry_after"])}
            return JSONResponse(load_fixture("error_429_rate_limited.json"), status_code=429, headers=headers)
        if kind == "429_date":
            when = self.clock.now() + timedelta(seconds=float(p.get("seconds", 30)))
            headers = {"retry-after": format_datetime(when.astimezone(UTC), usegmt=True)}
            return JSONResponse(load_fixture("error_429_rate_limited.json"), status_code=429, headers=headers)
        if kind == "429_html":
            return Response(HTML_PAGE, status_code=429, media_type="text/html")
        if kind == "status":
            code = int(p["code"])
            headers = {} if p.get("retry_after") is None else {"retry-after": str(p["retry_after"])}
            if code == 403:
                return Response(b"error code: 1020", status_code=403, media_type="text/plain", headers=headers)
            return JSONResponse({"error": f"fake {code}"}, status_code=code, headers=headers)
        if kind == "redirect":
            target = str(request.url.replace(path="/redirected", query=""))
            return Response(status_code=302, headers={"location": target})
        if kind == "oversized":
            return self._oversized(int(p.get("size", 6_000_000)), bool(p.get("declare", False)))
        if kind == "html_200":
            return Response(HTML_PAGE, status_code=200, media_type=str(p.get("content_type", "text/html")))
        if kind == "delay":
            await asyncio.sleep(float(p["seconds"]))
        status, body = build(request)
        if status != 200 or kind == "delay":
            return JSONResponse(body, status_code=status)
        raw = json.dumps(body).encode()
        if kind == "slow_drip":
            return self._drip(raw, float(p.get("interval", 1.0)), request)
        if kind == "reset":
            return _AbortMidBody(raw)
        if kind == "truncated":
            return Response(raw[: max(1, len(raw) * 6 // 10)], media_type="application/json")
        if kind == "schema":
            return JSONResponse(_mutate(endpoint, body, str(p["mutation"])))
        if kind == "jump":
            factor = float(p.get("factor", 1000.0))
            if endpoint == "/simple/price":
                body = {coin: {**v, "usd": v["usd"] * factor} for coin, v in body.items()}
            return JSONResponse(body)
        if kind == "empty":
            empty: Any = {
                "/coins/{id}/ohlc": [],
                "/coins/{id}/market_chart": {"prices": [], "market_caps": [], "total_volumes": []},
                "/search": {"coins": [], "exchanges": [], "icons": [], "categories": [], "nfts": []},
            }.get(endpoint, {})
            return JSONResponse(empty)
        raise ValueError(f"unknown fault kind {kind!r}")

    @staticmethod
    def _drip(raw: bytes, interval: float, request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(len(raw)):
                if await request.is_disconnected():
                    return
                yield raw[i : i + 1]
                await asyncio.sleep(interval)

        return StreamingResponse(chunks(), media_type="application/json", headers={"content-length": str(len(raw))})

    def _oversized(self, size: int, declare: bool) -> Response:
        unit = b"[1626555643217,31723.09],"

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"prices":['
            self.bytes_streamed = 11
            block = unit * 4000
            while self.bytes_streamed + len(block) < size:
                yield block
                self.bytes_streamed += len(block)
            yield b"[1626555643217,31723.09]]}"

        headers = {"content-length": str(size)} if declare else {}
        return StreamingResponse(chunks(), media_type="application/json", headers=headers)

    # --------------------------------------------------------------------------------------------- builders

    def _ping(self, request: Request) -> tuple[int, Any]:
        return 200, load_fixture("ping.json")

    def _simple_price(self, request: Request) -> tuple[int, Any]:
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        vs = request.query_params.get("vs_currencies", "")
        if not ids or not vs:
            return 400, {"error": "Missing parameter ids or vs_currencies"}
        flags = {k: request.query_params.get(k) == "true" for k in ("include_24hr_change", "include_last_updated_at")}
        now_s = int(self.clock.now().timestamp())
        out: dict[str, dict[str, Any]] = {}
        for coin in ids:
            if coin not in self.prices or vs != "usd":
                continue
            entry: dict[str, Any] = {"usd": self.prices[coin]}
            if flags["include_24hr_change"]:
                entry["usd_24h_change"] = self.change_24h.get(coin)
            if flags["include_last_updated_at"]:
                entry["last_updated_at"] = now_s
            out[coin] = entry
        return 200, out

    def _coins_list(self, request: Request) -> tuple[int, Any]:
        return 200, self.coins

    def _search(self, request: Request) -> tuple[int, Any]:
        query = request.query_params.get("query", "").strip().lower()
        if not query:
            return 400, {"error": "Missing parameter query"}
        hits = [
            c
            for c in self.coins
            if query in c["id"].lower() or query in c["symbol"].lower() or query in c["name"].lower()
        ]

        def rank(c: dict[str, Any]) -> int | None:
            value = c.get("market_cap_rank", self.ranks.get(c["id"]))
            return value if isinstance(value, int) else None

        hits.sort(key=lambda c: (rank(c) is None, rank(c) or 0))
        coins = [
            {
                "id": c["id"],
                "name": c["name"],
                "api_symbol": c["id"],
                "symbol": c["symbol"].upper(),
                "market_cap_rank": rank(c),
                "thumb": f"https://assets.coingecko.com/coins/images/1/thumb/{c['id']}.png",
                "large": f"https://assets.coingecko.com/coins/images/1/large/{c['id']}.png",
            }
            for c in hits
        ]
        return 200, {"coins": coins, "exchanges": [], "icons": [], "categories": [], "nfts": []}

    def _coin_known(self, coin: str) -> bool:
        return any(c["id"] == coin for c in self.coins)

    def _market_chart(self, request: Request) -> tuple[int, Any]:
        coin = request.path_params["id"]
        days_text = request.query_params.get("days", "")
        if not self._coin_known(coin):
            return 404, load_fixture("error_404_coin_not_found.json")
        if not days_text.isdigit() or int(days_text) < 1:
            return 400, {"error": "invalid days"}
        days = int(days_text)
        if days > 365:
            return 401, load_fixture("error_401_time_range_exceeded_10012.json")
        if coin != "bitcoin" or 30 < days <= 90:
            return 400, {"error": f"the fake has no market_chart fixture for {coin} days={days}"}
        source = 1 if days == 1 else (30 if days <= 30 else 365)
        body = load_fixture(f"coins_bitcoin_market_chart_days_{source}.json")
        if days not in (1, 30, 365):
            cutoff = FAKE_NOW_MS - days * DAY_MS
            body = {k: [p for p in v if p[0] >= cutoff] for k, v in body.items()}
        return 200, body

    def _ohlc(self, request: Request) -> tuple[int, Any]:
        coin = request.path_params["id"]
        days = request.query_params.get("days", "")
        if not self._coin_known(coin):
            return 404, load_fixture("error_404_coin_not_found.json")
        if days not in OHLC_DAYS:
            return 400, {"error": "invalid days"}
        if coin != "bitcoin" or days not in ("1", "7", "90"):
            return 400, {"error": f"the fake has no ohlc fixture for {coin} days={days}"}
        return 200, load_fixture(f"coins_bitcoin_ohlc_days_{days}.json")


def _mutate(endpoint: Endpoint, body: Any, mutation: str) -> Any:
    """Break one value of a good body the way §7.2 lists ("wrong schema")."""
    body = copy.deepcopy(body)

    def broken(value: float) -> Any:
        return {"string": str(value), "null": None, "zero": 0, "negative": -value, "huge": 1e300}[mutation]

    if endpoint == "/simple/price":
        for entry in body.values():
            if mutation == "missing":
                entry.pop("usd", None)
            else:
                entry["usd"] = broken(entry["usd"])
    elif endpoint == "/coins/{id}/ohlc":
        if mutation == "missing":
            body[0] = body[0][:3]
        else:
            body[0][4] = broken(body[0][4])
    elif endpoint == "/coins/{id}/market_chart":
        if mutation == "missing":
            body.pop("prices")
        else:
            body["prices"][0][1] = broken(body["prices"][0][1])
    elif endpoint == "/search" and mutation == "missing":
        body.pop("coins")
    return body


@contextlib.asynccontextmanager
async def serve_asgi(app: Any) -> AsyncIterator[str]:
    """Run ``app`` on a real uvicorn at 127.0.0.1 on a free port, in this event loop; yields ``http://host:port``."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_level="critical",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
            raise RuntimeError("uvicorn exited before starting")
        await asyncio.sleep(0.01)
    else:
        raise RuntimeError("uvicorn did not start in 5 s")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def running_fake(clock: Clock | None = None) -> AsyncIterator[FakeCoinGecko]:
    """A :class:`FakeCoinGecko` served over real HTTP; ``fake.base_url`` is its ``.../api/v3`` root."""
    fake = FakeCoinGecko(clock)
    async with serve_asgi(fake.app) as root:
        fake.base_url = f"{root}/api/v3"
        yield fake
