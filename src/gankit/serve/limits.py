"""Request limits: per-request maxima, per-key token-bucket rate limits, body size (413)."""

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
    `timeout_s` bounds the model work of one request (504 after it).
    """

    max_n: int = 256
    max_rows: int = 1024
    max_body_bytes: int = 1 << 20
    rate: float = 0.0
    burst: int = 100
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("max_n", "max_rows", "max_body_bytes", "burst"):
            if getattr(self, name) < 1:
                raise ConfigError(f"limit {name} must be >= 1, got {getattr(self, name)}")
        if self.rate < 0 or self.timeout_s <= 0:
            raise ConfigError(f"limits: rate must be >= 0 and timeout_s > 0, got {self}")


class RateLimiter:
    """A token bucket per key id: `rate` tokens per second, at most `burst` stored."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key_id: str) -> float:
        """0.0 if the request may go ahead, else the seconds until a token is available."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
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
