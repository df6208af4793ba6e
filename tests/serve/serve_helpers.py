"""Helpers for the service tests: a fake imputer and synthesizer, a live uvicorn server."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from gankit.serve.models import TabularModel

SCHEMA = {
    "columns": [
        {"name": "age", "type": "numeric", "min": 0.0, "max": 100.0},
        {"name": "income", "type": "numeric", "min": 0.0, "max": 1000.0},
        {"name": "city", "type": "categorical", "categories": ["a", "b"]},
    ]
}


class MeanImputer:
    """Follows the imputer contract (`transform(frame)`); fills with fixed column values."""

    fill: ClassVar[dict[str, Any]] = {"age": 40.0, "income": 500.0, "city": "a"}

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.fillna(self.fill)


class SeededSynth:
    """Follows the synthesizer contract (`sample(n, seed=...)`)."""

    def sample(self, n: int, seed: int | None = None) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        return pd.DataFrame(
            {
                "age": rng.uniform(0, 100, n),
                "income": rng.uniform(0, 1000, n),
                "city": rng.choice(["a", "b"], n),
            }
        )


def tabular_models() -> dict[str, TabularModel]:
    """An imputer and a synthesizer with the schema above."""
    imputer = TabularModel("imp", MeanImputer(), {"kind": "imputer", "schema": SCHEMA})
    synth = TabularModel("synth", SeededSynth(), {"kind": "tabular-synth", "schema": SCHEMA})
    return {"imp": imputer, "synth": synth}


class LiveServer:
    """uvicorn serving `app` on a free loopback port in a background thread."""

    def __init__(self, app: Any, **ssl: Any):
        import socket
        import threading

        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", **ssl)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
