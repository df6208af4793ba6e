"""Security headers on every response of the service (pure ASGI middleware).

* `Content-Security-Policy`: the page and its static files may load only from the service
  itself (`PAGE_CSP`); every other response (JSON, PNG, metrics) gets `API_CSP`, which allows
  nothing. `/docs` and `/redoc` (off unless `gankit serve --docs`) load Swagger UI / ReDoc from
  a public CDN and run an inline script, so they get `DOCS_CSP`, which allows exactly that.
* `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`.
* `Cache-Control: no-store` on everything but the static files: responses carry samples,
  rows, model metadata or metrics, none of which a shared cache should keep.
* `Strict-Transport-Security` when the request came over TLS.
"""

from __future__ import annotations

from typing import Any

PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; worker-src blob:; frame-ancestors 'none'; base-uri 'none'"
)
HSTS = "max-age=31536000"
COMMON = {
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"x-frame-options": b"DENY",
}


def policy(path: str) -> tuple[str, str]:
    """(Content-Security-Policy, Cache-Control) for a request path."""
    if path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        return DOCS_CSP, "no-store"
    if path.startswith("/static/"):
        return PAGE_CSP, "no-cache"
    if path == "/":
        return PAGE_CSP, "no-store"
    return API_CSP, "no-store"


class SecurityHeadersMiddleware:
    """Adds the headers above to every HTTP response (those set by a route are replaced)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp, cache = policy(scope.get("path", ""))
        extra = {
            **COMMON,
            b"content-security-policy": csp.encode(),
            b"cache-control": cache.encode(),
        }
        if scope.get("scheme") == "https":
            extra[b"strict-transport-security"] = HSTS.encode()

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in extra]
                message = {**message, "headers": headers + list(extra.items())}
            await send(message)

        await self.app(scope, receive, send_with_headers)
