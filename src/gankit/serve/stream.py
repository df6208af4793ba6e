"""Streaming imputation for live feeds: one JSON object per line in, one filled line out.

`stream_impute` reads lines from a text stream (stdin for `gankit impute --model DIR --stream`)
and writes each filled row as soon as its line arrives, flushing after every line; a line that
fails validation produces an error line and the stream goes on. At the end it returns (and the
CLI prints to stderr) the per-record latency summary. The HTTP endpoint
`POST /v1/impute/stream` runs `impute_chunks`, the same per line over a chunked request.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from gankit.errors import CheckpointError, ConfigError
from gankit.registry import kinds_with
from gankit.serve.metrics import ServeMetrics
from gankit.serve.models import LoadOptions, TabularModel, load_models


def impute_line(
    model: TabularModel,
    line: str,
    index: int,
    metrics: ServeMetrics | None = None,
    latency: bool = True,
) -> str | None:
    """The output line for one input line (None for a blank line).

    Output: {"row": {...}, "latency_ms": x} when `latency`, else the filled row itself; or
    {"line": index, "error": [...]} naming the column that was wrong.
    """
    if not line.strip():
        return None
    start = time.perf_counter()
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return error_line(index, [{"loc": ["line"], "msg": f"invalid JSON ({exc})"}])
    check = model.check_rows([row], loc=())
    if check.errors:
        return error_line(index, [{**e, "loc": e["loc"][1:]} for e in check.errors])
    if metrics is not None:
        metrics.observe_inputs(model.name, model.column_names, check.missing, check.out_of_range, 1)
    filled = model.rows_out(model.impute(check.frame))[0]
    if not latency:
        return json.dumps(filled)
    return json.dumps({"row": filled, "latency_ms": round((time.perf_counter() - start) * 1000, 3)})


def error_line(index: int, errors: list[dict[str, Any]]) -> str:
    """The output line for input line `index` that failed: {"line": index, "error": errors}."""
    return json.dumps({"line": index, "error": errors})


class LineTooLong(ValueError):
    """A streamed line is longer than the body limit."""


async def aiter_lines(chunks: AsyncIterator[bytes], max_line_bytes: int) -> AsyncIterator[str]:
    """Split a byte stream into text lines as chunks arrive (a final unterminated line counts)."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode("utf-8", errors="replace")
        if len(buffer) > max_line_bytes:
            raise LineTooLong(f"a line exceeds the limit of {max_line_bytes} bytes")
    if buffer.strip():
        yield buffer.decode("utf-8", errors="replace")


async def impute_chunks(
    model: TabularModel,
    chunks: AsyncIterator[bytes],
    max_line_bytes: int,
    metrics: ServeMetrics | None = None,
) -> AsyncIterator[str]:
    """Output lines (newline-terminated) for a chunked NDJSON body, each as its line arrives.

    A line longer than `max_line_bytes` gets an error line and ends the stream.
    """
    index = 0
    try:
        async for line in aiter_lines(chunks, max_line_bytes):
            out = impute_line(model, line, index, metrics)
            index += 1
            if out is not None:
                yield out + "\n"
    except LineTooLong as exc:
        yield error_line(index, [{"loc": ["line"], "msg": str(exc)}]) + "\n"


def stream_impute(
    model: TabularModel | str | Path,
    source: IO[str] | None = None,
    sink: IO[str] | None = None,
    latency: bool = False,
) -> dict[str, Any]:
    """Impute a JSON-lines stream line by line; return counts and latency percentiles (ms).

    `model` is a loaded TabularModel or an imputer model directory (verified before use).
    Each output line is the filled row (or, with `latency`, {"row", "latency_ms"}).
    """
    if not isinstance(model, TabularModel):
        model = load_imputer(model)
    source = source if source is not None else sys.stdin
    sink = sink if sink is not None else sys.stdout
    times: list[float] = []
    errors = 0
    for index, line in enumerate(iter(source.readline, "")):
        start = time.perf_counter()
        out = impute_line(model, line, index, latency=latency)
        if out is None:
            continue
        sink.write(out + "\n")
        sink.flush()
        if out.startswith('{"line"'):
            errors += 1
        else:
            times.append((time.perf_counter() - start) * 1000)
    return latency_summary(times, errors)


def latency_summary(times_ms: list[float], errors: int = 0) -> dict[str, Any]:
    """Records, errors and p50/p99/max latency in milliseconds."""
    arr = np.asarray(times_ms, dtype=np.float64)
    out: dict[str, Any] = {"records": int(arr.size), "errors": errors}
    if arr.size:
        out.update(
            p50_ms=round(float(np.percentile(arr, 50)), 3),
            p99_ms=round(float(np.percentile(arr, 99)), 3),
            max_ms=round(float(arr.max()), 3),
        )
    return out


def load_imputer(directory: str | Path) -> TabularModel:
    """Load and verify one imputer model directory."""
    served, refused = load_models([directory], LoadOptions())
    if refused:
        raise CheckpointError(next(iter(refused.values())))
    model = next(iter(served.values()))
    if not isinstance(model, TabularModel) or model.kind not in kinds_with("imputation"):
        raise CheckpointError(
            f"{directory}: kind is {model.kind!r}, expected one of {list(kinds_with('imputation'))}"
        )
    return model


def stream_command(model_dir: str | None) -> int:
    """`gankit impute --model DIR --stream`: stdin -> stdout, latency summary on stderr."""
    if not model_dir:
        raise ConfigError("--stream needs --model DIR (a saved imputer)")
    summary = stream_impute(model_dir)
    print(json.dumps({"stream": summary}), file=sys.stderr)
    return 0
