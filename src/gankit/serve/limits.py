"""Request limits: per-request maxima, token-bucket rate limits, body size (413).

Two rate limits, both on by default: per API key (`rate`, `burst`) for authenticated calls, and
per client address (`address_rate`, `address_burst`) for everything sent without a valid key:
the open endpoints (`/healthz`, `/readyz`, the page, `/openapi.json`) and rejected (401) calls.
The address is the TCP peer: behind a reverse proxy every client shares the proxy's address, so
there limit at the proxy and raise or disable (0) the address limit here.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException

from gankit.errors import ConfigError


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how often a key may ask.

    `rate` is requests per second per key (0 = unlimited) with bursts up to `burst`;
    `address_rate` / `address_burst` the same per client address for requests without a valid
    key; `timeout_s` bounds the model work of one request (504 after it). The defaults (50/s,
    bursts of 100 per key; 5/s, bursts of 20 per address) leave an interactive client or a
    health probe far from the limit and stop one key or one address from taking the service.
    """

    max_n: int = 256
    max_rows: int = 1024
    max_body_bytes: int = 1 << 20
    rate: float = 50.0
    burst: int = 100
    timeout_s: float = 30.0
    address_rate: float = 5.0
    address_burst: int = 20

    def __post_init__(self) -> None:
        for name in ("max_n", "max_rows", "max_body_bytes", "burst", "address_burst"):
            if getattr(self, name) < 1:
                raise ConfigError(f"limit {name} must be >= 1, got {getattr(self, name)}")
        if self.rate < 0 or self.address_rate < 0 or self.timeout_s <= 0:
            raise ConfigError(
                f"limits: rate and address_rate must be >= 0 and timeout_s > 0, got {self}"
            )


class RateLimiter:
    """A token bucket per key id or address: `rate` tokens per second, at most `burst` stored.

    At most `max_buckets` are kept: past that, buckets that have refilled are forgotten (they
    would start full anyway), so many addresses cannot grow the table without bound."""

    def __init__(self, rate: float, burst: int, max_buckets: int = 10_000):
        self.rate, self.burst, self.max_buckets = rate, burst, max_buckets
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        full = float(self.burst)
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= full:
                del self._buckets[key]
        if len(self._buckets) >= self.max_buckets:  # all busy: forget the oldest half
            for key, _ in sorted(self._buckets.items(), key=lambda kv: kv[1][1])[
                : len(self._buckets) // 2
            ]:
                del self._buckets[key]

    def acquire(self, key_id: str) -> float:
        """0.0 if the request may go ahead, else the seconds until a token is available."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            if key_id not in self._buckets and len(self._buckets) >= self.max_buckets:
                self._prune(now)
            tokens, last = self._buckets.get(key_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / self.rate


class _BodyTooLarge(HTTPException):
    """Raised from `receive`; an HTTPException so FastAPI's body parser re-raises it as 413."""

    def __init__(self, max_bytes: int):
        super().__init__(413, f"request body exceeds the limit of {max_bytes} bytes")


class BodySizeLimitMiddleware:
    """Pure ASGI middleware: 413 when the declared or streamed body exceeds `max_bytes`.

    Streaming endpoints (paths ending in `/stream`) are exempt: they bound each line instead.
    """

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].endswith("/stream"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1
                if declared > self.max_bytes:
                    await self._reject(send)
                    return
        received = 0
        started = False

        async def counted_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Any) -> None:
        body = json.dumps(
            {"detail": f"request body exceeds the limit of {self.max_bytes} bytes"}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def client_address(scope: dict) -> str:
    """The TCP peer's address ("unknown" when the server does not say)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def too_many(wait: float) -> HTTPException:
    """The 429 for a bucket that is `wait` seconds from its next token."""
    return HTTPException(429, "rate limit exceeded", {"Retry-After": str(max(1, round(wait)))})


class AddressRateLimitMiddleware:
    """Pure ASGI middleware: the per-address limit on the open endpoints (everything but `/v1`
    and `/metrics`, where the service limits by key, or by address when no valid key is sent)."""

    def __init__(self, app: Any, limiter: RateLimiter):
        self.app, self.limiter = app, limiter

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/v1/") or path == "/metrics":
            await self.app(scope, receive, send)
            return
        wait = self.limiter.acquire(client_address(scope))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": "rate limit exceeded"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(max(1, round(wait))).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})
