"""Helpers for the service tests: real tiny models (fitted once per process), a live server."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_ROOT = tempfile.TemporaryDirectory(prefix="gankit-serve-models-")  # removed at exit
TINY_STEPS = 5


def people(n: int = 48, seed: int = 0) -> pd.DataFrame:
    """age (whole numbers 18..90), income (~ 10 x age) and city ("a" / "b")."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 91, n).astype(float)
    return pd.DataFrame(
        {
            "age": age,
            "income": np.round(age * 10 + rng.normal(0, 20, n), 2),
            "city": rng.choice(["a", "b"], n),
        }
    )


@functools.cache
def tiny_models() -> dict[str, Path]:
    """Model directories written by gankit itself, each fitted in well under a second:
    "imp" (GANImputer), "synth" (TabularGAN), "ids" and "synth-ids" (the same with an identifier
    column "name"), "trained" (a toy generator trained by `gankit.train` for a few steps, with
    its critic)."""
    import gankit
    from gankit.config import load_config
    from gankit.tabular import GANImputer, TabularGAN

    from ..conftest import TINY_TOY

    root = Path(_ROOT.name)
    table = people()
    holed = table.mask(np.random.default_rng(1).random(table.shape) < 0.1)
    GANImputer(n_steps=20, patience=20, random_state=0).fit(holed).save(root / "imp")
    TabularGAN(n_steps=3, hidden=(16,), z_dim=8, batch_size=20, random_state=0).fit(
        table, discrete_columns=["city"]
    ).save(root / "synth")
    named = holed.assign(name=[f"person-{i:03d}" for i in range(len(holed))])
    GANImputer(n_steps=0, identifier_columns=["name"], random_state=0).fit(named).save(root / "ids")
    TabularGAN(n_steps=2, hidden=(16,), z_dim=8, batch_size=20, random_state=0).fit(
        table.assign(name=named["name"]), discrete_columns=["city"], identifier_columns=["name"]
    ).save(root / "synth-ids")
    gankit.train(load_config(None, [*TINY_TOY, f"train.steps={TINY_STEPS}"]), root / "trained")
    return {name: root / name for name in ("imp", "synth", "ids", "synth-ids", "trained")}


def tabular_dirs() -> list[Path]:
    """The imputer and the synthesizer of `tiny_models`."""
    models = tiny_models()
    return [models["imp"], models["synth"]]


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
