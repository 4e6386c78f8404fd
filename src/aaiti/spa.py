"""Serving the built dashboard: client-side routes fall back to index.html; /api never does.

HTML is served ``no-cache`` (so a new build is picked up), hashed assets ``immutable`` for a year.
"""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

DEFAULT_STATIC = Path(__file__).parent / "static" / "dist"

NOT_BUILT_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>aaiti</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>aaiti is running</h1>
<p>The API is up (<a href="/docs">/docs</a>, <a href="/api/health">/api/health</a>), but the dashboard has not
been built.</p>
<p>Build it with <code>make frontend</code> (or <code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code>)
and reload this page.</p></body></html>"""


class SPAStaticFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or not _is_client_route(path):
                raise
            response = await super().get_response("index.html", scope)
        if response.status_code == 404 and _is_client_route(path):
            response = await super().get_response("index.html", scope)
        if path.startswith("assets/") and response.status_code == 200:
            response.headers["cache-control"] = "public, max-age=31536000, immutable"
        elif response.media_type == "text/html" or path in {"", ".", "index.html"}:
            response.headers["cache-control"] = "no-cache"
        return response


def _is_client_route(path: str) -> bool:
    last = path.rsplit("/", 1)[-1]
    return not path.startswith(("api/", "assets/", "socket.io")) and "." not in last


def not_built() -> HTMLResponse:
    return HTMLResponse(NOT_BUILT_PAGE, headers={"cache-control": "no-cache"})


def static_dir(configured: Path | None) -> Path | None:
    folder = configured or DEFAULT_STATIC
    return folder if (folder / "index.html").is_file() else None
