"""`gankit bench throughput`: the Trainer's steps/s against a minimal hand-written loop.

Both train the demo DCGAN on digits with the same networks, data, batch size, loss and Adam
settings; they run in alternating blocks in one process so that drift on a shared machine hits
both alike. The step's FLOPs (PyTorch's FlopCounterMode) and a large fp32 matmul give the
fraction of the CPU's measured peak that one training step reaches.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from gankit.bench.common import format_table
from gankit.config import load_config
from gankit.demo import demo_config
from gankit.engine import Trainer
from gankit.engine.runs import build_trainer


class PlainLoop:
    """The canonical PyTorch GAN loop (as in the DCGAN example), no framework at all."""

    def __init__(self, trainer: Trainer) -> None:
        cfg, model = trainer.model.cfg, trainer.model
        self.g, self.d = model.networks["g"], model.networks["d"]
        self.x, self.batch, self.z = model.dataset.x, cfg.train.batch_size, cfg.model.latent_dim
        betas = tuple(cfg.train.betas)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=cfg.train.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=cfg.train.lr_d, betas=betas)
        self.perm, self.pos = torch.randperm(len(self.x)), 0

    def step(self) -> None:
        if self.pos + self.batch > len(self.x):
            self.perm, self.pos = torch.randperm(len(self.x)), 0
        real = self.x[self.perm[self.pos : self.pos + self.batch]]
        self.pos += self.batch
        with torch.no_grad():
            fake = self.g(torch.randn(self.batch, self.z))
        loss_d = F.softplus(-self.d(real)).mean() + F.softplus(self.d(fake)).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        loss_g = F.softplus(-self.d(self.g(torch.randn(self.batch, self.z)))).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()


def _rate(step, n: int) -> tuple[float, float]:
    """Steps per second of wall time and of this process's CPU time.

    On a shared machine the CPU-time rate is the steadier one: waiting for a core is not
    counted. (With several threads it also counts their spin-waiting; run with one thread.)
    """
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        step()
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s (per CPU-second) of a square matmul: the measured peak of this CPU."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        a @ b
        best = min(best, time.process_time() - start)
    return 2 * size**3 / best / 1e9


def run(quick: bool = False, seeds: int | None = None) -> dict:
    """Measure both loops; `quick` uses fewer and shorter blocks."""
    cfg = load_config(demo_config(), ["train.progress=false", "train.ema=0"])
    gankit_trainer = build_trainer(cfg, None)
    plain = PlainLoop(build_trainer(cfg, None))
    blocks, per_block = (2, 10) if quick else (10, 50)
    for step in (gankit_trainer.run_step, plain.step):  # warm-up
        _rate(step, 5)
    rates: dict[str, list[float]] = {"gankit": [], "plain": []}
    cpu_rates: dict[str, list[float]] = {"gankit": [], "plain": []}
    peaks = []  # the peak is measured between blocks too: on a shared CPU, keep the best
    for _ in range(blocks):
        for name, step in (("gankit", gankit_trainer.run_step), ("plain", plain.step)):
            wall_rate, cpu_rate = _rate(step, per_block)
            rates[name].append(wall_rate)
            cpu_rates[name].append(cpu_rate)
        peaks.append(matmul_peak_gflops(1024 if quick else 2048))
    with FlopCounterMode(display=False) as counter:
        gankit_trainer.run_step()
    step_flops = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        plain.step()
    plain_flops = counter.get_total_flops()  # the same algorithm written by hand: same work
    peak = max(peaks)
    gk, pl = max(rates["gankit"]), max(rates["plain"])
    gk_cpu, pl_cpu = _median(cpu_rates["gankit"]), _median(cpu_rates["plain"])
    achieved = step_flops * gk_cpu / 1e9
    rows = [
        ["gankit Trainer", f"{gk:.1f}", f"{gk_cpu:.1f}", f"{gk_cpu / pl_cpu:.3f}"],
        ["plain PyTorch loop", f"{pl:.1f}", f"{pl_cpu:.1f}", "1.000"],
    ]
    headers = ["loop", "steps/s (best block, wall)", "steps per CPU-second (median)", "ratio"]
    table = format_table(headers, rows) + (
        f"\nstep = {step_flops / 1e6:.1f} MFLOP; {achieved:.2f} GFLOP per CPU-second = "
        f"{100 * achieved / peak:.1f}% of the measured fp32 matmul peak ({peak:.1f} GFLOP/s)"
    )
    return {
        "table": table,
        "steps_per_second": rates,
        "steps_per_cpu_second": cpu_rates,
        "ratio_cpu_median": gk_cpu / pl_cpu,
        "ratio_best": gk / pl,
        "ratio_median": _median(rates["gankit"]) / _median(rates["plain"]),
        "step_mflop": step_flops / 1e6,
        "plain_step_mflop": plain_flops / 1e6,
        "matmul_peak_gflops": peak,
        "matmul_gflops_per_block": peaks,
        "fraction_of_peak": achieved / peak,
        "protocol": f"{blocks} alternating blocks of {per_block} steps; demo DCGAN on digits, "
        f"batch {cfg.train.batch_size}, Adam, non-saturating loss, EMA off in both",
        "reference": "target: gankit >= 0.95x the plain loop (issue: core)",
    }
