"""`gankit bench ddp`: data-parallel scaling on this machine — 1 and 2 processes under torchrun.

The demo DCGAN (digits, global batch 64) trains the same number of steps with `torchrun
--nproc_per_node P`; each process computes the same global batch and trains on its slice, so
the work per step is fixed and the speed-up is steps/s(P) / steps/s(1). The step rate is read
from rank 0's metrics.jsonl (`time` since the loop started: start-up and the process group are
not counted). Efficiency = speed-up / P. On a 2-core CPU this is bounded by the cores, the
gloo all-reduce and whatever else the machine runs; a GPU machine gives the NCCL number.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from gankit.bench.common import format_table


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _steps_per_second(processes: int, steps: int, run_dir: Path) -> float:
    """Train `steps` demo steps on `processes` ranks; rank 0's loop rate."""
    from gankit.demo import demo_config

    overrides = [
        f"train.steps={steps}",
        "train.progress=false",
        "train.ema=0",
        f"train.log_every={steps}",
        f"train.checkpoint_every={steps}",
        f"train.sample_every={steps}",
    ]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={processes}",
        f"--master_port={_free_port()}",
        "-m",
        "gankit.cli",
        "train",
        str(demo_config()),
        "--out",
        str(run_dir),
        *[arg for item in overrides for arg in ("--set", item)],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=3600)
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    return steps / last["time"]


def run(quick: bool = False, seeds: int | None = None) -> dict[str, Any]:
    """Steps/s with 1 and 2 processes at the same global batch, `seeds` repeats each."""
    steps = 20 if quick else 300
    repeats = seeds or 1
    rates: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="gankit-bench-ddp-") as tmp:
        for repeat in range(repeats):
            for processes in (1, 2):
                run_dir = Path(tmp) / f"p{processes}-r{repeat}"
                rates[processes].append(_steps_per_second(processes, steps, run_dir))
    best = {p: max(r) for p, r in rates.items()}
    speedup = best[2] / best[1]
    rows = [
        ["1", f"{best[1]:.2f}", "1.00", "1.00"],
        ["2", f"{best[2]:.2f}", f"{speedup:.2f}", f"{speedup / 2:.2f}"],
    ]
    table = format_table(["processes", "steps/s (best)", "speed-up", "efficiency"], rows)
    return {
        "table": table,
        "steps_per_second": rates,
        "speedup": speedup,
        "efficiency": speedup / 2,
        "protocol": f"demo DCGAN on digits, global batch 64, {steps} steps, torchrun with gloo, "
        f"one torch thread per process, best of {repeats} repeat(s); rate from rank 0's "
        "metrics.jsonl (loop time only)",
    }
