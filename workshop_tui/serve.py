"""``workshop serve``: the same app in a browser (textual-serve), guarded by a random token.

textual-serve starts one ``workshop`` process per browser tab and relays the terminal over a
websocket. It has no access control of its own, so this adds one: every request must carry the
token printed at start (``?token=...`` once; a cookie afterwards). It listens on 127.0.0.1 unless
told otherwise: the workshop can run commands as root, and must not be open to a room's network.
"""

from __future__ import annotations

import hmac
import re
import secrets
import sys

from aiohttp import web
from textual_serve.server import Server

COOKIE = "workshop_token"
# textual-serve's page asks Google for its terminal font; a room without internet waits for it.
# The same font ships in textual-serve's static files: the page gets it from there.
GOOGLE_FONT = re.compile(r"<link[^>]*fonts\.googleapis\.com[^>]*>")
LOCAL_FONT = (
    '<style>@font-face {{ font-family: "Roboto Mono"; '
    'src: url("{static}fonts/RobotoMono-VariableFont_wght.ttf"); }}</style>'
)


class GuardedServer(Server):
    def __init__(self, host: str, port: int, token: str, public_url: str, command: str = "",
                 title: str = "Container Internals Workshop") -> None:  # fmt: skip
        # The page tells the browser where to open its websocket: public_url must be an address
        # the browser can reach (textual-serve builds every URL of the page from it).
        super().__init__(command or f"{sys.executable} -m workshop_tui", host=host, port=port, title=title,
                         public_url=public_url.rstrip("/"))  # fmt: skip
        self.token = token

    async def on_startup(self, app: web.Application) -> None:
        """textual-serve prints its URL here, without the token: our own line (with it) is enough."""

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:  # noqa: ANN001
        if request.path.startswith("/static/"):  # the page's scripts and fonts: nothing secret
            return await handler(request)
        given = request.query.get("token") or request.cookies.get(COOKIE, "")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return web.Response(
                status=403, text="workshop: missing or wrong token; open the URL `workshop serve` printed\n"
            )
        response = await handler(request)
        if isinstance(response, web.Response) and response.content_type == "text/html" and response.text:
            local = LOCAL_FONT.format(static=f"{self.public_url}/static/")
            response.text = GOOGLE_FONT.sub(lambda _link: local, response.text)
        if "token" in request.query:
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
        return response


def serve(host: str = "127.0.0.1", port: int = 8000, public_url: str = "", command: str = "",
          title: str = "Container Internals Workshop") -> int:  # fmt: skip
    """Serve the workshop (or ``command``, another Textual app) to browsers that have the token."""
    if not public_url:
        if host in ("0.0.0.0", "::"):
            print("workshop: with --host 0.0.0.0, give --public-url http://ADDRESS:PORT (what browsers will open)",
                  file=sys.stderr)  # fmt: skip
            return 2
        public_url = f"http://{host}:{port}"
    token = secrets.token_urlsafe(16)
    server = GuardedServer(host, port, token, public_url, command, title)
    print(f"workshop: open {public_url.rstrip('/')}/?token={token}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"workshop: listening on {host}: anyone who can reach it AND has the token can use this machine as root")
    sys.stdout.flush()
    server.serve()
    return 0
