"""Micro-batching of concurrent requests to one model: generate and impute.

Requests waiting when the model becomes free are joined into one model call of up to
`max_batch` samples or rows, in a worker thread so the event loop keeps parsing requests
meanwhile; with `max_wait_ms` > 0 the first request also waits that long for company. What a
"call" is comes from a run function (inputs of the waiting requests -> one output each), so one
batcher class serves both routes:

* generate (`decode_batches`): latent vectors are drawn per request before batching, so a
  seeded request returns the same samples batched or not;
* impute (`serve/numeric.py`, `impute_batches`): the float rows of numeric imputers are joined
  into one `transform_numeric` call, whose cost hardly grows with the rows (2.6 ms for 1 row,
  2.9 ms for 64), when the imputer fills each row on its own; otherwise each request's rows are
  filled by a call of their own in the same worker hop, so responses never depend on which
  requests happened to arrive together.

Measured (docs/serving.md, docs/benchmarks.md): with 16 concurrent clients it doubles the
requests/s of an eager-PyTorch generator at n=1 and gains nothing under ONNX Runtime, whose call
is already ~50 µs. So `gankit serve` turns it on (no wait) for torch-runtime generators and
numeric imputers, and leaves it off for ONNX Runtime generators unless asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from starlette.exceptions import HTTPException

from gankit.errors import ConfigError
from gankit.serve.metrics import ServeMetrics
from gankit.serve.models import GeneratorModel

RunBatch = Callable[[list[Any]], Sequence[Any]]  # inputs of waiting requests -> one output each


@dataclass(frozen=True)
class BatchConfig:
    """Largest batch of samples/rows per model call, and how long the first request may wait."""

    max_batch: int = 64
    max_wait_ms: float = 2.0

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_wait_ms < 0:
            raise ConfigError(f"micro-batching: max_batch >= 1 and max_wait_ms >= 0, got {self}")


class MicroBatcher:
    """Collects the inputs of concurrent calls to one model and runs them together, through
    `run` (inputs -> outputs, in order), in a worker thread. `size` counts an input's samples or
    rows (for `max_batch` and the `model_call` batch-size metric)."""

    def __init__(
        self,
        name: str,
        run: RunBatch,
        config: BatchConfig,
        metrics: ServeMetrics,
        size: Callable[[Any], int] = len,
    ):
        self.name, self.run, self.config, self.metrics, self.size = name, run, config, metrics, size
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, item: Any) -> Any:
        """The output for `item` (computed possibly together with other waiting requests)."""
        loop = asyncio.get_running_loop()
        # first call, another event loop, or the worker was stopped (`close`, e.g. a lifespan
        # shutdown followed by more requests on the same loop): start a worker
        if self._loop is not loop or self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._worker(self._queue))
            self._loop = loop
        future: asyncio.Future = loop.create_future()
        assert self._queue is not None
        self._queue.put_nowait((item, self.size(item), future))
        return await future

    async def _collect(self, queue: asyncio.Queue) -> list[tuple]:
        items = [await queue.get()]
        size = items[0][1]
        while size < self.config.max_batch and not queue.empty():  # already waiting: free
            items.append(queue.get_nowait())
            size += items[-1][1]
        if self.config.max_wait_ms <= 0:
            return items
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.max_wait_ms / 1000.0
        while size < self.config.max_batch:
            timeout = deadline - loop.time()
            if timeout <= 0:
                break
            try:
                item = await asyncio.wait_for(queue.get(), timeout)
            except TimeoutError:
                break
            items.append(item)
            size += item[1]
        return items

    async def _worker(self, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        items: list[tuple] = []
        try:
            while True:
                items = await self._collect(queue)
                try:
                    self.metrics.observe_batch(self.name, sum(i[1] for i in items), "model_call")
                    inputs = [item[0] for item in items]
                    outputs = await loop.run_in_executor(None, self.run, inputs)
                except Exception as exc:  # hand the failure to every waiting request
                    for *_, future in items:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (*_, future), output in zip(items, outputs, strict=True):
                    if not future.done():
                        future.set_result(output)
        finally:  # stopped: nobody may wait forever on a request this worker took or queued
            pending = list(items)
            while not queue.empty():
                pending.append(queue.get_nowait())
            for *_, future in pending:
                if not future.done():
                    future.set_exception(HTTPException(503, "the service is stopping"))

    def close(self) -> None:
        """Stop the worker task (a later `submit` starts a new one)."""
        if self._task is not None:
            self._task.cancel()
        self._task = None


def split_rows(out: Any, sizes: Sequence[int]) -> list[Any]:
    """`out` cut along its first axis into consecutive pieces of `sizes` rows."""
    pieces, start = [], 0
    for size in sizes:
        pieces.append(out[start : start + size])
        start += size
    return pieces


def decode_batches(model: GeneratorModel) -> RunBatch:
    """The run function of a generator: (z, labels) pairs -> one decode of them all, split."""

    def run(items: list[tuple[torch.Tensor, torch.Tensor | None]]) -> list[np.ndarray]:
        z = torch.cat([item[0] for item in items])
        parts = [item[1] for item in items]  # all None (unconditional) or all tensors
        labels = None if parts[0] is None else torch.cat(cast(list[torch.Tensor], parts))
        return split_rows(model.decode(z, labels), [int(item[0].shape[0]) for item in items])

    return run


def generator_batcher(
    model: GeneratorModel, config: BatchConfig, metrics: ServeMetrics
) -> MicroBatcher:
    """The batcher of /v1/generate and /v1/decode for one generator: inputs are (z, labels)."""
    return MicroBatcher(
        model.name, decode_batches(model), config, metrics, size=lambda item: int(item[0].shape[0])
    )
