"""What every benchmark result records: the environment and the exact command."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.modeldir import atomic_write_json


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """Versions, hardware and command line of the current process."""
    from gankit import __version__

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {
        "gankit": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": "gankit " + shlex.join(sys.argv[1:]) if sys.argv else "",
    }


def write_result(path: str | Path, result: dict[str, Any]) -> Path:
    """Write a benchmark result as JSON (atomically)."""
    path = Path(path)
    atomic_write_json(path, result)
    return path


def format_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain monospace table (also valid Markdown)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (ddof=1; 0 for a single value)."""
    arr = np.asarray(values, dtype=np.float64)
    se = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else 0.0
    return float(arr.mean()), se
