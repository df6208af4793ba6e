"""The audit trail and the request observer (audit line + Prometheus metrics per request).

The audit log is append-only JSON lines: time, key id (never the key), method, endpoint, model,
n, status, latency. No payload data is written, so the log can be kept longer than the data.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from gankit.serve.metrics import ServeMetrics


class AuditLog:
    """Appends one JSON object per request to a file opened with O_APPEND."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as a single line (a single write, so lines never interleave)."""
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            self._file.write(line)

    def close(self) -> None:
        """Flush and close the file."""
        with self._lock:
            self._file.close()


def _route_path(scope: dict) -> str:
    """The route template (`/v1/generate`), or "other" so unknown paths cannot grow labels."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "other"


class ObserverMiddleware:
    """Pure ASGI middleware: per-request latency and status into metrics and the audit log.

    Handlers put `key_id`, `model` and `n` into `request.state` (the scope's "state" dict);
    this middleware reads them after the response has started.
    """

    def __init__(self, app: Any, metrics: ServeMetrics, audit: AuditLog | None):
        self.app, self.metrics, self.audit = app, metrics, audit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def tracked_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        finally:
            self._record(scope, status, time.perf_counter() - start)

    def _record(self, scope: dict, status: int, seconds: float) -> None:
        endpoint = _route_path(scope)
        state = scope.get("state") or {}
        model = state.get("model") or ""
        self.metrics.observe_request(endpoint, model, status, seconds)
        if self.audit is None or endpoint in ("/healthz", "/readyz"):
            return
        self.audit.write(
            {
                "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
                "key_id": state.get("key_id"),
                "method": scope.get("method"),
                "endpoint": endpoint,
                "model": model or None,
                "n": state.get("n"),
                "status": status,
                "latency_ms": round(seconds * 1000, 3),
            }
        )
